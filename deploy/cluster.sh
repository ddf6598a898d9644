#!/usr/bin/env bash
# A local Redis Cluster for development: 3 masters with a replica each on 127.0.0.1:7000-7005, data in
# var/cluster/, until Ctrl-C (services/cli/cluster_local.py). With a key ring (greenex keys init), every node
# gets the exchange's users:
#   bash deploy/cluster.sh --aclfile var/keys/redis/users.acl --admin-password-file var/keys/redis-admin.pass
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m services.cli.cluster_local "$@"
