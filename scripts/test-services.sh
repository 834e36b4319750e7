#!/usr/bin/env bash
# Install (from Debian's packages) and start what the test suite talks to, when not already running:
# PostgreSQL on 127.0.0.1:5432 with a `wecity` role, Mosquitto on 127.0.0.1:1883, and Chromium with
# Chinese fonts for the browser tests, poppler-utils to read PDFs back. Safe to run again: it only does what is missing.
set -euo pipefail

need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v mosquitto >/dev/null || need+=(mosquitto mosquitto-clients)
command -v chromium >/dev/null || need+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v pdftotext >/dev/null || need+=(poppler-utils)  # the briefing test reads the PDF back
command -v tilemaker >/dev/null || need+=(tilemaker)  # the base-map tests build tiles from an OSM extract
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    pg_createcluster 15 main >/dev/null
    cluster="15 main"
  fi
  pg_ctlcluster $cluster start
  for _ in $(seq 50); do port_open 5432 && break; sleep 0.2; done
fi
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='wecity'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE wecity LOGIN SUPERUSER PASSWORD 'wecity'\""

if ! port_open 1883; then
  mkdir -p var
  # max_queued_messages 0: keep every undelivered QoS 1 message for a client (the default drops past 1,000)
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' > var/mosquitto.conf
  mosquitto -d -c "$PWD/var/mosquitto.conf"
  for _ in $(seq 50); do port_open 1883 && break; sleep 0.1; done
fi
echo "services ready: postgresql 127.0.0.1:5432, mosquitto 127.0.0.1:1883, chromium $(chromium --version 2>/dev/null | awk '{print $2}')"
