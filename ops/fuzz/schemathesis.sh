#!/usr/bin/env bash
# Fuzzes both services' OpenAPI documents with Schemathesis (4.x: every phase incl. stateful,
# every check): the tenant router as a fresh company's admin, then the control plane as the
# operator (it may suspend/delete tenants and toggle maintenance, hence second).
#
# Usage:  ops/fuzz/schemathesis.sh STACK_ENV [REPORT_DIR]
#   target/debug/ops up --fresh --dir /tmp/st-stack --port 18080 --router-port 18081 &
#   ops/fuzz/schemathesis.sh /tmp/st-stack/stack.env /tmp/st-report
# Needs curl, python3 and `pip install 'schemathesis>=4.1,<5'`. MAX_EXAMPLES (50: about 1 min;
# 300: about 4 min) and SEED (1) tune a run. Reports, and the crash cache `st replay` reads, go
# to REPORT_DIR (default /tmp/nexacore-schemathesis). Exits non-zero on any failure.
set -euo pipefail

env_file=${1:?usage: $0 STACK_ENV [REPORT_DIR]}
out=${2:-/tmp/nexacore-schemathesis}
# shellcheck disable=SC1090
source "$env_file"
mkdir -p "$out" && cd "$out"
plane=$NEXACORE_CONTROL_PLANE_URL router=$NEXACORE_ROUTER_URL op=$NEXACORE_OPERATOR_TOKEN
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# A previous control-plane run may have left the platform in maintenance mode.
curl -fsS -X PUT "$plane/system/maintenance" -H "Authorization: Bearer $op" \
  -H 'content-type: application/json' -d '{"maintenance_mode": false}' >/dev/null

# Sign a company up; its admin's token is the router's credential.
id="$(date +%s)-$RANDOM"
token=$(curl -fsS -X POST "$plane/tenants" -H 'content-type: application/json' \
  -H "Idempotency-Key: fuzz-$id" -d '{"company_name": "Fuzz '"$id"'", "timezone": "Europe/Berlin",
  "currency": "EUR", "admin": {"email": "fuzz-'"$id"'@example.com",
  "password": "Str0ng&Secret!", "full_name": "Fuzz Admin"}}' | json '["access_token"]')

# Real employees to start from: the document links POST /employees (201) and the item
# operations to GET/PATCH/DELETE /employees/{id}, and these give the first requests ids to use.
for n in 1 2 3 4 5 6 7 8; do
  curl -fsS -o /dev/null -X POST "$router/employees" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d '{"first_name": "Seed'$n'", "last_name": "Fuzz",
    "email": "seed'$n'@fuzz.example.com", "hire_date": "2024-01-15"}'
done

fuzz() { # fuzz NAME URL TOKEN
  schemathesis run "$2/openapi.json" -H "Authorization: Bearer $3" --wait-for-schema 30 \
    --phases examples,coverage,fuzzing,stateful --checks all --continue-on-failure \
    --max-examples "${MAX_EXAMPLES:-50}" --seed "${SEED:-1}" --generation-database none \
    --request-timeout 30 --report junit,ndjson --report-dir "$1"
}
rc=0
fuzz router "$router" "$token" || rc=1
fuzz control-plane "$plane" "$op" || rc=1
exit $rc
