#!/usr/bin/env bash
# One command to a working demo site on this machine: installs what is missing, starts Docker, creates a hub
# container and a compute container, gives them a small real Slurm cluster and demo users (demo-only role),
# converges site.yml exactly as a site would, and prints the URL and the demo credentials.
#   sudo ./scripts/demo.sh          bring it up (re-run: converges again, changes nothing)
#   sudo ./scripts/demo.sh down     remove the containers (add --purge to delete homes and environments)
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

if [ "${1:-}" = "down" ]; then
  purge=false; [ "${2:-}" = "--purge" ] && purge=true
  .venv/bin/ansible-playbook playbooks/demo_down.yml -e "demo_purge=$purge"
  exit 0
fi

bash scripts/bootstrap.sh
# shellcheck disable=SC1091
source .venv/bin/activate
ansible-playbook playbooks/demo_up.yml
ansible-playbook -i inventories/demo playbooks/demo_cluster.yml
ansible-playbook -i inventories/demo site.yml

cat <<MSG

  JupyterHub demo site is up:  http://localhost:8000   (http://127.0.0.1:8000 leads there)
  Users' servers get names of their own: http://alice.localhost:8000/user/alice/

  Demo users (Linux accounts on the demo cluster, checked through PAM):
    alice / alice-demo
    bob   / bob-demo
  Each server is a Slurm job on jhub-demo-node1:  docker exec jhub-demo-hub squeue
  Remove it:  ./scripts/demo.sh down

MSG
