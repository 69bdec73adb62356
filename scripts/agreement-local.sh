#!/usr/bin/env bash
# A throwaway Slurm controller on this machine with a reference inventory's shapes, then the agreement tool
# against it (docs/agreement.md). DEVELOPMENT ONLY: Debian's slurm-wlm and munge (apt-get install -y slurm-wlm
# munge), root, files under /tmp/shapes-slurm; nothing else on the machine is changed (its own munge and Slurm
# are not used). The nodes have no slurmd: State=CLOUD (powered down, schedulable), enough for sbatch --test-only.
#   scripts/agreement-local.sh narval [tool options]    # the table for inventories/narval
#   scripts/agreement-local.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
base=/tmp/shapes-slurm
venv=${VENV:-.venv}  # the checkout's tools (scripts/bootstrap.sh)
export SLURM_CONF=$base/slurm.conf
stop() {
    if [ -r $base/slurmctld.pid ]; then kill "$(cat $base/slurmctld.pid)" 2>/dev/null || true; fi
    if [ -r $base/munge/munged.pid ]; then kill "$(cat $base/munge/munged.pid)" 2>/dev/null || true; fi
    sleep 1
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi
cluster=${1:?usage: $0 <inventory name>|stop [jupyterhub-hpc-agreement options]}
shift
stop
rm -rf $base/state $base/render && mkdir -p $base/state $base/log $base/render $base/munge
chown munge: $base/munge
[ -r $base/munge/munge.key ] || { dd if=/dev/urandom bs=1024 count=1 status=none > $base/munge/munge.key; }
chown munge: $base/munge/munge.key && chmod 0400 $base/munge/munge.key
runuser -u munge -- munged --key-file=$base/munge/munge.key --socket=$base/munge/munge.socket \
    --pid-file=$base/munge/munged.pid --log-file=$base/munge/munged.log --seed-file=$base/munge/seed --force
# The demo-only role's own templates, for the inventory's model (one node per node type).
ANSIBLE_CONFIG=$PWD/ansible.cfg "$venv/bin/ansible-playbook" -i "inventories/$cluster" \
    tests/playbooks/render_demo_slurm.yml -e render_dir=$base/render -e node_state=CLOUD >/dev/null
# Only what differs on this machine: paths, ports, the munge socket, root as SlurmUser, power saving for CLOUD nodes.
sed -e "s|^SlurmUser=.*|SlurmUser=root|" \
    -e "s|^AuthType=auth/munge|AuthType=auth/munge\nAuthInfo=socket=$base/munge/munge.socket|" \
    -e "s|^StateSaveLocation=.*|StateSaveLocation=$base/state|" \
    -e "s|^SlurmctldPidFile=.*|SlurmctldPidFile=$base/slurmctld.pid|" \
    -e "s|^SlurmctldLogFile=.*|SlurmctldLogFile=$base/log/slurmctld.log|" \
    -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$base/spool|" \
    $base/render/slurm.conf > $SLURM_CONF
cat >> $SLURM_CONF <<CONF
SlurmctldPort=16817
SlurmdPort=16818
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=600
ResumeTimeout=600
CONF
cp $base/render/gres.conf $base/gres.conf
slurmctld -f $SLURM_CONF
for _ in $(seq 50); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
id shapes-test >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin shapes-test
PYTHONPATH=$PWD/src "$venv/bin/python" -m jupyterhub_hpc.agreement --model "inventories/$cluster/group_vars/all/cluster.yml" \
    --user shapes-test --sbatch "env SLURM_CONF=$SLURM_CONF sbatch" "$@"
