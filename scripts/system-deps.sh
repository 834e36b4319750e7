#!/usr/bin/env bash
# System libraries the Python dependencies build against, from Debian's packages, installed only when
# missing: ICU (PyICU sorts strings by a language's collation, as NGSI-LD `collation=` asks), pkg-config
# and a C++ compiler to build it. PyPI has no binary wheel of PyICU. And a Chinese font, which the
# e-certificates' PDF embeds (wecity.govservice.certificate_pdf). And tilemaker, which builds the city's
# street map from an OpenStreetMap extract (`wecity city import-basemap`, docs/basemap.md).
set -euo pipefail

need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v g++ >/dev/null || need+=(g++)
if ! command -v pkg-config >/dev/null || ! pkg-config --exists icu-i18n; then
  need+=(libicu-dev)
fi
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v tilemaker >/dev/null || need+=(tilemaker)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "WeCity needs these Debian packages: ${need[*]} (apt-get install ${need[*]}); run as root or install them first" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
