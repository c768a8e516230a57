#!/usr/bin/env bash
# The board test (`make board-test`): the Debian package on a real board. Builds the package
# twice (revisions 1 and 2 of the same release, to upgrade from one to the other), boots a
# Debian 12 virtual machine (systemd as PID 1, Debian's stock mosquitto, no Swift, no network)
# and runs Tests/Board/on-board.sh in it as an operator would: install, checks, upgrade, failed
# start, rollback; then reboots the same disk and checks again, removes and purges.
#
#   bash Tests/Board/run.sh [--bin DIR]     DIR: release gatewayd and gwctl already built
#
# The VM comes from the team's board-vm tool (BOARD_VM, default ../shared/board-vm/board-vm.sh
# beside the checkout): KVM where it can boot, emulation otherwise; the first run debootstraps
# the image (about 2 minutes), later runs reuse it. Output of each boot: /tmp/board-vm/runs/.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
board_vm=${BOARD_VM:-$top/../shared/board-vm/board-vm.sh}
bin=()
[ "${1:-}" != --bin ] || bin=(--bin "${2:?--bin needs a directory}")
say() { echo "board-test: $*" >&2; }

[ -x "$board_vm" ] || [ -f "$board_vm" ] || {
    say "no board VM tool at $board_vm (set BOARD_VM to board-vm.sh)"
    exit 69
}
t0=$SECONDS
bash "$board_vm" image

debs=$top/.build-deb/board-debs
rm -rf "$debs"
mkdir -p "$debs"
bash "$top/Deploy/build-deb.sh" "${bin[@]}" --revision 1 --out "$debs" >/dev/null
# Revision 2 packages the same binaries (the first call built them if --bin was not given).
[ "${#bin[@]}" -gt 0 ] || bin=(--bin "$top/.build-deb/release")
bash "$top/Deploy/build-deb.sh" "${bin[@]}" --revision 2 --out "$debs" >/dev/null

# One disk for both boots: the second run is the same board rebooted.
disk=board-test-$$
export BOARD_VM_DISK=$disk GW_CHECKOUT=$top BOARD_VM_TIMEOUT=${BOARD_VM_TIMEOUT:-900}
trap 'rm -f "${BOARD_VM_DIR:-/tmp/board-vm}/disks/$disk.img"' EXIT
status=0
bash "$board_vm" run "$debs" bash Tests/Board/on-board.sh install /opt/board-bin || status=$?
if [ "$status" -eq 0 ]; then
    bash "$board_vm" run "$debs" bash Tests/Board/on-board.sh reboot /opt/board-bin || status=$?
fi
say "$([ "$status" -eq 0 ] && echo passed || echo "FAILED (exit $status)") in $((SECONDS - t0)) s"
exit "$status"
