#!/usr/bin/env bash
# A one-host Ray cluster over SSH for test_cluster_launcher.py: `ray up`, `ray submit`, `ray down`
# against an sshd on 127.0.0.1. Run it in namespaces of its own
# (`unshare --pid --net --mount --fork --mount-proc`): the `ray stop` the cluster config runs sees
# only this namespace's processes, the cluster's ports (6379, 8265, 5000) are its own, and
# everything it started ends with it.
# Usage: one_host_cluster.sh FOLDER SUBMIT_SCRIPT STUDY (FOLDER holds cluster.yaml and ./studies;
# each step's output goes to FOLDER/STEP.log and its exit code to FOLDER/STEP.rc).
set -euo pipefail
folder=$1
submit=$2
study=$3

ip link set lo up
mkdir -p /tmp/ray "$folder/ray-temp" "$folder/head-home" /run/sshd
mount --bind "$folder/ray-temp" /tmp/ray  # the head's Ray session and the launcher's state stay here

# The SSH user: root's uid with a home of its own in FOLDER, in copies of passwd and shadow that
# only this namespace sees.
cp /etc/passwd "$folder/passwd"
echo "smcltest:x:0:0:smcl-tune test:$folder/head-home:/bin/bash" >> "$folder/passwd"
cp /etc/shadow "$folder/shadow"
echo "smcltest:*:20000:0:99999:7:::" >> "$folder/shadow"
mount --bind "$folder/passwd" /etc/passwd
mount --bind "$folder/shadow" /etc/shadow

ssh-keygen -q -t ed25519 -N '' -f "$folder/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$folder/client_key"
cat > "$folder/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
HostKey $folder/host_key
AuthorizedKeysFile $folder/client_key.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $folder/sshd.pid
${PYTHONPATH:+SetEnv PYTHONPATH=$PYTHONPATH}
CONFIG
/usr/sbin/sshd -f "$folder/sshd_config" -E "$folder/sshd.log"

cd "$folder"
step() {
    local name=$1
    shift
    set +e
    "$@" > "$name.log" 2>&1
    echo $? > "$name.rc"
    set -e
}
step token ray get-auth-token --generate
step up ray up -y cluster.yaml --no-config-cache
if [ "$(cat up.rc)" = 0 ]; then
    step submit ray submit cluster.yaml "$submit" run "$study"
fi
step down ray down -y cluster.yaml
