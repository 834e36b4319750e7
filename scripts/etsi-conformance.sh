#!/bin/bash
# The ETSI NGSI-LD conformance suite against this broker, every group on a fresh `wecity serve` of its own
# (groups are run independently, as their figures in docs/context-broker.md are).
#
#   scripts/etsi-conformance.sh SUITE_DIR [GROUP...]
#
# SUITE_DIR: a checkout of github.com/marek-mraz/ngsi-ld-test-suite with its requirements installed in
# SUITE_DIR/.venv (python3 -m venv .venv && .venv/bin/pip install -r requirements.txt). Nothing is fetched:
# the @context documents the tests name on the internet are served from 127.0.0.1, the suite's own from its
# resources/jsonld-contexts, and two FIWARE ones (data-models/context.jsonld, NGSI-LD_TestSuite
# ldContext/testContext.jsonld) from $EXTRA_CONTEXTS (a directory holding them as
# fiware-data-models-context.jsonld and fiware-testContext.jsonld) when it is set.
# Mosquitto on 127.0.0.1:1883 for the MQTT notification tests (scripts/test-services.sh starts one).
# Figures: one line per group on stdout; everything else under $OUT (default var/etsi).
set -u
suite_src=$(cd "$1" && pwd); shift
root=$(cd "$(dirname "$0")/.." && pwd)
py=${WECITY_PY:-$root/.venv/bin/python}
out=${OUT:-$root/var/etsi}
broker=${BROKER_PORT:-9090}
base=${BASE_PORT:-8080}   # @contexts on base, notifications base+5, context source mock base+6, context server base+7
groups=${*:-"ContextInformation/Provision/Entities ContextInformation/Provision/BatchEntities
ContextInformation/Consumption/Entity ContextInformation/Subscription ContextInformation/Provision/EntityAttributes
ContextInformation/Consumption/TemporalEntity ContextInformation/Provision/TemporalEntity
ContextInformation/Provision/TemporalEntityAttributes jsonldContext ContextInformation/Consumption/Discovery
CommonBehaviours ContextInformation/EntityMap ContextInformation/Provision/PurgeEntities
ContextInformation/Provision/TransientEntities ContextInformation/Snapshot ContextSource/Registration
ContextSource/RegistrationSubscription ContextSource/Discovery DistributedOperations/Consumption
DistributedOperations/Provision DistributedOperations/LoopDetection DistributedOperations/Subscription"}

mkdir -p "$out"
suite=$out/suite
if [ ! -d "$suite" ]; then
  cp -r "$suite_src" "$suite"
  rewrite=(-e "s#https://raw.githubusercontent.com/marek-mraz/ngsi-ld-test-suite/main/resources/jsonld-contexts/#http://127.0.0.1:$base/#g"
           -e "s#https://easy-global-market.github.io/ngsild-api-data-models/ngsildTestSuite/ngsildTestSuiteV1.8-compound.jsonld#http://127.0.0.1:$base/ngsi-ld-test-suite-compound.jsonld#g")
  if [ -n "${EXTRA_CONTEXTS:-}" ]; then
    cp "$EXTRA_CONTEXTS"/fiware-*.jsonld "$suite/resources/jsonld-contexts/"
    rewrite+=(-e "s#https://fiware.github.io/data-models/context.jsonld#http://127.0.0.1:$base/fiware-data-models-context.jsonld#g"
              -e "s#https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld#http://127.0.0.1:$base/fiware-testContext.jsonld#g")
  fi
  grep -rlE "raw.githubusercontent.com/marek-mraz|easy-global-market.github.io|fiware.github.io" \
    "$suite/data" "$suite/resources" "$suite/TP" | xargs -r sed -i -E "${rewrite[@]}"
  # The suite's two Location checks mean to accept the header in any case, as their comment says and RFC
  # 9110 5.1 requires, but test the text of the headers (`'Location' in ${response_headers}` pastes the
  # dictionary's repr into the expression), so a server that writes header names in lower case, as this
  # one does, fails them. ETSI_AS_PUBLISHED=1 leaves the suite as it is published.
  if [ "${ETSI_AS_PUBLISHED:-0}" != 1 ]; then
    sed -i "s/'Location' in \${response_headers}/'Location' in \$response_headers/" "$suite/resources/AssertionUtils.resource"
  fi
  cat > "$suite/resources/variables.py" <<EOF
url = 'http://127.0.0.1:$broker/ngsi-ld/v1'
temporal_api_url = url
ngsild_test_suite_context = 'http://127.0.0.1:$base/ngsi-ld-test-suite-compound.jsonld'
notification_server_host = '127.0.0.1'
notification_server_port = $((base + 5))
mqtt_broker_host = '127.0.0.1'
mqtt_broker_non_default_port = 1883
context_source_host = '127.0.0.1'
context_source_port = $((base + 6))
context_server_host = '127.0.0.1'
context_server_port = $((base + 7))
core_context = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld'
delete_temporal_on_core_delete = True
EOF
fi

(cd "$suite/resources/jsonld-contexts" && exec python3 -m http.server "$base" --bind 127.0.0.1) > "$out/contexts.log" 2>&1 &
contexts=$!
trap 'kill $contexts 2>/dev/null' EXIT

for group in $groups; do
  tag=$(echo "$group" | tr '/' '_')
  var=$(mktemp -d)
  # A broker of its own for each group. The suite's paging tests need a page smaller than the default
  # 1,000 temporal instances.
  (cd "$var" && PYTHONPATH="$root/src" WECITY_VAR_DIR="$var" WECITY_DATABASE_URL="sqlite:///$var/wecity.db" \
    WECITY_NGSILD_AUTH=off WECITY_NGSILD_TEMPORAL_INSTANCES=30 WECITY_OUTBOUND_ALLOW=127.0.0.1,::1,localhost \
    exec "$py" -m wecity serve --host 127.0.0.1 --port "$broker") > "$out/$tag.server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 120); do
    curl -s -o /dev/null "http://127.0.0.1:$broker/ngsi-ld/v1/info/sourceIdentity" && break
    sleep 0.5
  done
  (cd "$suite" && "$suite_src/.venv/bin/robot" --outputdir "$out/$tag" --loglevel NONE --report NONE --log NONE \
    "TP/NGSI-LD/$group" > "$out/$tag.txt" 2>&1)
  kill "$server"; wait "$server" 2>/dev/null
  rm -rf "$var"
  "$py" - "$group" "$out/$tag/output.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
total = ET.parse(sys.argv[2]).getroot().find("statistics/total/stat")
print(f"{sys.argv[1]}: {total.get('pass')} / {int(total.get('pass')) + int(total.get('fail'))}")
EOF
done
