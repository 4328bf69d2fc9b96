#!/bin/sh
# Before the service starts: migrate the database, and on the very first start create tenant
# 'default' (its API key is printed once, here, and saved in $CESCALE_STATE_DIR/api-key, on the
# volume). Later starts find the tenant and print nothing secret. Then run the command.
set -eu
if [ "${1:-}" = "cescale" ] && [ "${2:-}" = "serve" ]; then
    cescale db upgrade
    cescale bootstrap
fi
exec "$@"
