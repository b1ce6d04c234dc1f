# Helpers shared by the cases; each case starts with `. "$FH_COMMON"`.
# The runner sets: FH_CASE_ID, FH_CASE_DIR (cwd, scratch), FH_ARTIFACTS
# (files kept with the results), FH_TOOL (the guest tool), FH_PROFILE,
# FH_DAX / FH_DAX_NAME (when the case asked for pmem), FH_NOTRUN_FILE,
# FH_SPOILED_FILE.

# Stop here and report the case as not run, with the reason.
_notrun() {
	echo "$*" > "$FH_NOTRUN_FILE"
	exit 0
}

# _boot_spoiled REASON: the case changes the machine for good (poisoned
# memory stays poisoned): the cases after it get a fresh VM.
_boot_spoiled() {
	echo "$*" > "$FH_SPOILED_FILE"
}

# _phase NAME ... _phase_end: the time between counts as NAME in the
# case's timing (`cargo xtask bench suite`: daemon, mount, setup, wait,
# teardown; the rest is body). Phases nest; the innermost gets the time.
# Read from /proc/uptime without a fork: the marks cost next to nothing.
_ph_depth=0
_phase() {
	_ph_depth=$((_ph_depth + 1))
	[ -n "$FH_PHASES_FILE" ] || return 0
	read -r _ph_t _ph_rest < /proc/uptime
	echo "+$1 $_ph_t" >> "$FH_PHASES_FILE"
}
_phase_end() {
	_ph_depth=$((_ph_depth - 1))
	[ -n "$FH_PHASES_FILE" ] || return 0
	read -r _ph_t _ph_rest < /proc/uptime
	echo "- $_ph_t" >> "$FH_PHASES_FILE"
}
# _sleep SECONDS: a wait the case chose; counted as `wait`.
_sleep() {
	_phase wait
	sleep "$1"
	_phase_end
}

# Stop here and fail the case.
_fail() {
	echo "FAIL: $*"
	exit 1
}

_require_dax() {
	[ -n "$FH_DAX" ] && [ -c "$FH_DAX" ] || _notrun "no dax device (the case must ask for requires.pmem)"
}

_require_dax_driver() {
	[ -d "/sys/bus/dax/drivers/$1" ] || _notrun "dax driver $1 is not in this kernel"
}

# Current driver of the case's dax device.
_dax_driver() {
	d=$(readlink "/sys/bus/dax/devices/$FH_DAX_NAME/driver") || { echo "(none)"; return; }
	basename "$d"
}

_dax_bind() {
	"$FH_TOOL" dax-bind "$FH_DAX_NAME" "$1"
}

# _wait_for PATH SECONDS: wait until PATH exists.
# Counted as `wait` unless a phase that waits on purpose (daemon) is open.
_wait_for() {
	_wf_phase=$_ph_depth
	[ "$_wf_phase" = 0 ] && _phase wait
	n=0
	while [ ! -e "$1" ]; do
		n=$((n + 1))
		if [ "$n" -gt $(($2 * 20)) ]; then
			[ "$_wf_phase" = 0 ] && _phase_end
			return 1
		fi
		sleep 0.05
	done
	[ "$_wf_phase" = 0 ] && _phase_end
	return 0
}

# _returns_or_blocks FILE PID SECONDS: wait until FILE (where PID writes
# its result) is not empty (FILE `-`: until PID has exited): 0. Returns 1 as soon as PID has been in
# uninterruptible sleep (D) at the same kernel function for 3 s: a task the
# kernel will not wake (a deadlock; a correct kernel leaves D within
# milliseconds here, since nothing waits on a disk). Returns 2 after
# SECONDS without either. Counted as `wait`.
_returns_or_blocks() {
	_phase wait
	_rb_n=0
	_rb_d=0
	_rb_w=
	_rb_rc=2
	while [ "$_rb_n" -lt $(($3 * 10)) ]; do
		[ "$1" != - ] && [ -s "$1" ] && { _rb_rc=0; break; }
		_rb_st=$(cut -d' ' -f3 "/proc/$2/stat" 2> /dev/null)
		[ "$1" = - ] && case $_rb_st in "" | Z) _rb_rc=0; break ;; esac
		_rb_wc=$(cat "/proc/$2/wchan" 2> /dev/null)
		if [ "$_rb_st" = D ] && [ "$_rb_wc" = "$_rb_w" ]; then
			_rb_d=$((_rb_d + 1))
			[ "$_rb_d" -ge 30 ] && { _rb_rc=1; break; }
		else
			_rb_d=0
		fi
		_rb_w=$_rb_wc
		sleep 0.1
		_rb_n=$((_rb_n + 1))
	done
	# The result may have come while we looked at the task.
	[ "$_rb_rc" = 0 ] || [ "$1" = - ] || [ ! -s "$1" ] || _rb_rc=0
	_phase_end
	return $_rb_rc
}

# Gate for famfs cases: from the kernel's build (its .config and the famfs
# ABI its source defines), decided on the host before boot: a kernel without
# famfs, or whose famfs speaks other numbers than the run's profile, is "not
# run", with why. A kernel built with famfs for the profile must offer the
# capability to a mounter with CAP_SYS_RAWIO and send GET_FMAP on open;
# one that does not fails the case with why ("famfs is broken: ...").
_require_famfs_cap() {
	msg=$("$FH_TOOL" famfs-cap "$FH_PROFILE" 2>&1)
	case $? in
	0) ;;
	3) _notrun "$msg" ;;
	1) _fail "$msg" ;;
	*) _fail "capability gate failed: $msg" ;;
	esac
}

# _famfs_kernel: true when the kernel's build says it does famfs under the
# run's profile (CONFIG_FUSE_FAMFS_DAX=y and a source whose famfs ABI is the
# profile's), known before boot. Cases derive what the kernel must do from
# this, never from what it offers.
_famfs_kernel() {
	"$FH_TOOL" famfs-expected "$FH_PROFILE" > /dev/null
}

# _require_profile FEATURE: the famfs gate, then not run, with the ABI's
# reason, unless the run's profile has FEATURE: interleave, pull
# (GET_DAXDEV), push (FUSE_DEV_IOC_DAXDEV_OPEN), fmap-size (the GET_FMAP
# size probe). For trials that only make sense for one famfs generation.
_require_profile() {
	# A famfs trial first: a kernel built with famfs that does not do it
	# fails here, whatever its profile lacks.
	_require_famfs_cap
	_rp=$("$FH_TOOL" profile-has "$FH_PROFILE" "$1")
	case $? in
	0) ;;
	3) _notrun "$_rp" ;;
	*) _fail "profile-has $1: $_rp" ;;
	esac
}

# _profile_has FEATURE: true when the run's profile has FEATURE.
_profile_has() {
	"$FH_TOOL" profile-has "$FH_PROFILE" "$1" > /dev/null
}

# _famfs_devices_known N [LOG]: the kernel learnt of famfsd's N devices the
# way the run's profile says: V10 asks GET_DAXDEV once per device; next
# never asks, famfsd pushes each one once and the kernel takes it.
_famfs_devices_known() {
	_dk_log=${2:-$FH_ARTIFACTS/requests.jsonl}
	_dk_asks=$(grep -c '"name":"GET_DAXDEV"' "$_dk_log")
	if _profile_has push; then
		_dk_ok=$(grep '"event":"push"' "$_dk_log" | grep -c '"result":0[,}]')
		_expect "dax devices made known" "GET_DAXDEV $_dk_asks, $_dk_ok pushed" "GET_DAXDEV 0, $1 pushed"
	else
		_expect "dax devices made known" "GET_DAXDEV $_dk_asks" "GET_DAXDEV $1"
	fi
}

# _famfs_pushes [LOG]: each push famfsd made, judged against a correct
# kernel of the run's profile (`fh-guest push-expect`).
_famfs_pushes() {
	_fp_log=${1:-$FH_ARTIFACTS/requests.jsonl}
	# Its INIT record (requests-2.jsonl: init-2.json) says what famfs
	# must be after INIT.
	"$FH_TOOL" push-expect "$_fp_log" "$FH_PROFILE" "$(echo "$_fp_log" | sed 's/requests\([^/]*\)\.jsonl$/init\1.json/')"
}

# _kconfig SYMBOL: true when the kernel under test was built with
# CONFIG_SYMBOL (=y or =m). Cases that must behave differently on a famfs
# kernel and on one without famfs derive what is correct from this.
_kconfig() {
	case " $FH_KCONFIG " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# _expect_any WHAT GOT WANT [ALSO...]: one line that reads the same on
# every kernel when GOT is what this kernel must give (WANT), and says both
# when it is not. Where a correct kernel may also answer an ALSO (the
# protocol allows each), that passes with the note "(seen GOT, also
# correct)", which the golden comparison ignores; anything else says what
# every correct kernel may give.
_expect_any() {
	_ea_what=$1 _ea_got=$2 _ea_want=$3
	shift 3
	if [ "$_ea_got" = "$_ea_want" ]; then
		echo "$_ea_what: as the kernel must"
		return
	fi
	for _ea in "$@"; do
		if [ "$_ea_got" = "$_ea" ]; then
			echo "$_ea_what: as the kernel must (seen $_ea_got, also correct)"
			return
		fi
	done
	echo "$_ea_what: $_ea_got, but this kernel must give $_ea_want${1:+ (or $*)}"
}

# _expect WHAT GOT WANT: _expect_any with one correct answer.
_expect() {
	_expect_any "$1" "$2" "$3"
}

# _expect_lines WHAT GOT WANT: like _expect for multi-line results: one
# line per line that differs ("WHAT: line N: GOT_N, but this kernel must
# give WANT_N"), so that a known defect names exactly the lines it changes.
_expect_lines() {
	if [ "$2" = "$3" ]; then
		echo "$1: as the kernel must"
		return
	fi
	printf '%s\n' "$3" > "$FH_CASE_DIR/.expect.want"
	printf '%s\n' "$2" > "$FH_CASE_DIR/.expect.got"
	awk -v what="$1" '
		NR == FNR { want[FNR] = $0; nw = FNR; next }
		{ got[FNR] = $0; ng = FNR }
		END {
			n = ng > nw ? ng : nw
			for (i = 1; i <= n; i++) {
				g = i <= ng ? got[i] : "(nothing)"
				w = i <= nw ? want[i] : "(nothing)"
				if (g != w) printf "%s: line %d: %s, but this kernel must give %s\n", what, i, g, w
			}
		}' "$FH_CASE_DIR/.expect.want" "$FH_CASE_DIR/.expect.got"
}

# _sync_output: return once the host has every line the case printed so far
# (output is streamed by a runner thread a crash could stop before it sends).
_sync_output() {
	"$FH_TOOL" sync-output || _fail "could not sync the case's output"
}

# _lkdtm TYPE: provoke the kernel's crash-test driver (LKDTM) with one of the
# types it lists; not run when the kernel has no LKDTM or lacks TYPE.
_lkdtm() {
	_lkdtm_dir=/sys/kernel/debug/provoke-crash
	[ -w "$_lkdtm_dir/DIRECT" ] || _notrun "$_lkdtm_dir/DIRECT is missing (LKDTM)"
	# Reading DIRECT lists the types this kernel's LKDTM has.
	grep -qx "$1" "$_lkdtm_dir/DIRECT" || _notrun "this kernel's LKDTM has no $1"
	_sync_output
	echo "$1" > "$_lkdtm_dir/DIRECT"
}

# _wait_kmsg PATTERN SECONDS: wait until the kernel log has a line matching
# PATTERN (grep -E); fails the case when it does not come in time.
_wait_kmsg() {
	_phase wait
	_n=0
	while ! dmesg | grep -qE "$1"; do
		_n=$((_n + 1))
		[ "$_n" -le "$2" ] || _fail "no kernel log line matching '$1' within $2 s"
		sleep 1
	done
	_phase_end
}

# --- famfs toolkit --------------------------------------------------------
# A famfs case: _famfs_begin (gates, device pattern, fsdev_dax, cleanup trap),
# write a scenario, _famfsd_start it, check files, and leave; the EXIT trap
# stops famfsd and puts the device back whatever happened.

# _cleanup_add CMD: run CMD when the case exits (also after _fail), last
# added first.
_cleanup_cmds=""
_cleanup_add() {
	_cleanup_cmds="$1
$_cleanup_cmds"
	trap '_cleanup_run' EXIT
}
_cleanup_run() {
	_rc=$?
	trap - EXIT
	_phase teardown
	# In this shell, not a pipeline's subshell: `wait` must see famfsd.
	set -f
	_ifs=$IFS
	IFS='
'
	for _c in $_cleanup_cmds; do
		IFS=$_ifs
		eval "$_c"
	done
	IFS=$_ifs
	set +f
	exit $_rc
}

# _famfs_begin [PATTERN_LEN]: the gates of every famfs case (a dax device,
# fsdev_dax, a kernel that offers and uses the famfs capability), then the
# device's first PATTERN_LEN bytes (default 64M) get the address pattern and
# the device is bound to fsdev_dax, to be bound back to device_dax at exit.
_famfs_begin() {
	_famfs_gates
	_phase setup
	# Every word names its own device address; a fill that did not happen
	# would show only as wrong data later.
	_fb=$("$FH_TOOL" pattern-fill "$FH_DAX" 0 "${1:-64M}" 2>&1) || _fail "pattern-fill: $_fb"
	case $_fb in filled*) ;; *) _fail "pattern-fill: $_fb" ;; esac
	_famfs_bind
	_phase_end
}

# _famfs_gates: the gates of _famfs_begin alone (for a case that uses the
# device through devdax before famfs gets it).
_famfs_gates() {
	_require_dax
	_require_dax_driver fsdev_dax
	_require_famfs_cap
}

# _famfs_bind: the device to fsdev_dax now, back to device_dax at exit.
_famfs_bind() {
	_dax_bind fsdev_dax || _fail "binding $FH_DAX_NAME to fsdev_dax failed"
	# After famfsd's stop (added later, so it runs first): the connection
	# holds the device until the daemon is gone.
	_cleanup_add '_dax_bind device_dax || echo "FAIL: binding $FH_DAX_NAME back to device_dax failed"'
}

# _famfsd_start SCENARIO [FAMFSD OPTIONS...]: mount famfsd on $MNT
# ($FH_CASE_DIR/mnt) with the run's profile, requests logged to
# $FH_ARTIFACTS/requests.jsonl and INIT to init.json, and wait until it
# serves. Stopped at exit if the case does not stop it.
_famfsd_start() {
	MNT=$FH_CASE_DIR/mnt
	_famfsd_serve "" "$@"
}

# _famfsd_start_as NAME SCENARIO [FAMFSD OPTIONS...]: another famfsd beside
# the case's own, on $FH_CASE_DIR/mnt-NAME (mount source fh-famfsd-NAME),
# requests logged to $FH_ARTIFACTS/requests-NAME.jsonl, INIT to
# init-NAME.json (the pair _famfs_pushes reads), stderr in
# famfsd-NAME.stderr; waits until it serves. NAME: letters, digits, `_`.
# Its pid is $FAMFSD_PID_NAME; stopped at exit if the case does not stop
# it (_famfsd_stop_as NAME).
_famfsd_start_as() {
	case $1 in
	"" | *[!A-Za-z0-9_]*) _fail "_famfsd_start_as: \`$1\` is not a name (letters, digits, _)" ;;
	esac
	_famfsd_serve "$@"
}

# _famfsd_serve NAME SCENARIO [FAMFSD OPTIONS...]: both of the above (NAME
# empty: the case's own famfsd).
_famfsd_serve() {
	_fd_name=$1 _fd_scn=$2
	shift 2
	_fd_tag=${_fd_name:+-$_fd_name}
	_phase daemon
	mkdir -p "$FH_CASE_DIR/mnt$_fd_tag"
	rm -f "$FH_CASE_DIR/.famfsd$_fd_tag-ready"
	# shellcheck disable=SC2086
	"$FH_TOOL" famfsd --scenario "$_fd_scn" --mountpoint "$FH_CASE_DIR/mnt$_fd_tag" --profile "$FH_PROFILE" \
		${_fd_name:+--fsname fh-famfsd-$_fd_name} \
		--log "$FH_ARTIFACTS/requests$_fd_tag.jsonl" --init-record "$FH_ARTIFACTS/init$_fd_tag.json" \
		--ready "$FH_CASE_DIR/.famfsd$_fd_tag-ready" "$@" 2>> "$FH_ARTIFACTS/famfsd$_fd_tag.stderr" &
	if [ -z "$_fd_name" ]; then
		FAMFSD_PID=$!
		_cleanup_add '_famfsd_stop'
	else
		eval "FAMFSD_PID_$_fd_name=\$!"
		_cleanup_add "_famfsd_stop_as $_fd_name"
	fi
	_wait_for "$FH_CASE_DIR/.famfsd$_fd_tag-ready" 30 ||
		_fail "famfsd${_fd_name:+ $_fd_name} did not come up: $(cat "$FH_ARTIFACTS/famfsd$_fd_tag.stderr")"
	# mount(2) returns before the kernel's INIT is answered.
	_wait_for "$FH_ARTIFACTS/init$_fd_tag.json" 30 ||
		_fail "no INIT from the kernel${_fd_name:+ for famfsd $_fd_name} within 30 s"
	_phase_end
}

# _famfsd_stop_or_blocks: SIGTERM famfsd and print `famfsd stopped` once it
# has unmounted and exited, or `famfsd's unmount: blocked, never returned`
# when it sits in D state at one kernel function (the boot is then spoiled:
# that task never leaves).
_famfsd_stop_or_blocks() {
	kill -TERM "$FAMFSD_PID" 2> /dev/null
	if _returns_or_blocks - "$FAMFSD_PID" 60; then
		# (In a command substitution `wait` cannot reap it; the status
		# is famfsd's own business here.)
		wait "$FAMFSD_PID" 2> /dev/null
		echo "famfsd stopped"
	else
		_boot_spoiled "famfsd stuck in D state unmounting ($(cat "/proc/$FAMFSD_PID/wchan" 2> /dev/null))"
		FAMFSD_PID=""
		echo "famfsd's unmount: blocked, never returned"
	fi
}

# _famfs_mount_state: `still mounted` while $MNT is a FUSE mount, else
# `unmounted` (what a case prints after famfsd's stop).
_famfs_mount_state() {
	if grep -qF " $MNT fuse" /proc/mounts; then echo "still mounted"; else echo unmounted; fi
}

# _famfsd_stop: SIGTERM famfsd and wait until it has unmounted and exited;
# prints nothing unless it exits non-zero ("famfsd exit N").
_famfsd_stop() {
	_famfsd_end FAMFSD_PID famfsd
}

# _famfsd_stop_as NAME: the same for _famfsd_start_as NAME's famfsd
# ("famfsd NAME exit N").
_famfsd_stop_as() {
	_famfsd_end "FAMFSD_PID_$1" "famfsd $1"
}

# _famfsd_end PIDVAR WHAT: stop the famfsd whose pid is in PIDVAR.
_famfsd_end() {
	eval "_fe_pid=\$$1"
	[ -n "$_fe_pid" ] || return 0
	kill -TERM "$_fe_pid" 2> /dev/null
	wait "$_fe_pid"
	_st=$?
	eval "$1="
	[ "$_st" = 0 ] || echo "$2 exit $_st"
}

# _famfs_open PATH: `ok` or the errno name open(2) fails with.
_famfs_open() {
	"$FH_TOOL" open-errno "$1"
}

# _famfs_want SCENARIO PATH: what open(2) of PATH does on a correct kernel
# with the fmap famfsd serves for it (`ok` or an errno name, then any other
# answer a correct kernel may give: `ok EINVAL`; the kernel model decides,
# its reason goes to the artifacts).
_famfs_want() {
	"$FH_TOOL" fmap-expect "$1" "$2" "$FH_PROFILE" 2>> "$FH_ARTIFACTS/expectations.txt"
}

# _famfs_expect_open SCENARIO PATH: open $MNT/PATH and compare with
# _famfs_want.
_famfs_expect_open() {
	# shellcheck disable=SC2046
	_expect_any "open $2" "$(_famfs_open "$MNT$2")" $(_famfs_want "$1" "$2")
}

# _famfs_check_data SCENARIO PATH: $MNT/PATH reads (read(2) and mmap) as the
# device bytes its fmap names.
_famfs_check_data() {
	"$FH_TOOL" fmap-check "$1" "$2" "$MNT$2" "$FH_PROFILE"
}

# The real famfs user space (group famfs-user; requires.famfs_user): the
# programs, a mount point whose path says famfs (famfs's mounted-device
# check looks for that), FUSE mode, and a daemon crash in the kernel log.
FAMFS_USER_BIN=/opt/famfs-user/bin
_famfs_user_begin() {
	[ -x "$FAMFS_USER_BIN/famfs_fused" ] || _notrun "no famfs user space in the image"
	export FAMFS_MODE=fuse PATH="$FAMFS_USER_BIN:$PATH"
	# Runs last: later cases in this boot may die of signals on purpose.
	_cleanup_add "echo 0 > /proc/sys/kernel/print-fatal-signals"
	echo 1 > /proc/sys/kernel/print-fatal-signals
	FAMFS_MNT=/mnt/famfs
	mkdir -p "$FAMFS_MNT" /opt
	_cleanup_add "_famfs_user_umount quiet"
}

# famfs_fused's live pids ("" when none runs). A daemon that has just
# exited is a zombie until the runner (its new parent) reaps it, within
# 0.1 s: not counted.
_famfs_fused_pids() {
	for p in $(pidof famfs_fused); do
		[ "$(cut -d' ' -f3 "/proc/$p/stat" 2> /dev/null)" = Z ] || printf '%s ' "$p"
	done
}

# _famfs_user_gone WHAT [quiet] [crashes]: no famfs_fused may be left once nothing is
# mounted (it holds the device, which must not change driver under it).
# Waits up to 5 s (x the TCG scale) until every famfs_fused has exited and
# been reaped, says which, and kills any leftover so what follows starts
# clean. Then each daemon that ended other than `exit 0` since the last
# call (the runner notes every adopted process's end in exits.txt) is
# named: "WHAT: famfs_fused killed by SIGSEGV". `quiet` leaves out only
# the "no famfs_fused left" line.
_famfs_user_gone() {
	n=0
	while [ -n "$(pidof famfs_fused)" ]; do
		n=$((n + 1))
		if [ "$n" -gt $((100 * ${FH_TIMEOUT_SCALE%.*})) ]; then
			echo "$1: famfs_fused still running 5 s later"
			kill -9 $(pidof famfs_fused) 2> /dev/null
			sleep 0.5
			return 1
		fi
		sleep 0.05
	done
	[ "$2" = quiet ] || echo "$1: no famfs_fused left"
	_exits="$FH_ARTIFACTS/exits.txt"
	[ -f "$_exits" ] || return 0
	# `crashes`: only deaths by a signal count (see _famfs_user_mkfs).
	_drop='^famfs_fused\[[0-9]*\]: exit 0$'
	[ "$3" = crashes ] && _drop='^famfs_fused\[[0-9]*\]: exit [0-9]*$'
	tail -n +$((${_famfs_exits_seen:-0} + 1)) "$_exits" |
		sed -n "\%$_drop%d; s/^famfs_fused\[[0-9]*\]: /$1: famfs_fused /p"
	_famfs_exits_seen=$(wc -l < "$_exits")
}

# _famfs_user_mkfs [quiet]: `mkfs.famfs -f` on the case's device, then no
# famfs_fused may be left. mkfs.famfs mounts a scratch mount of its own and
# unmounts it at once; whether that daemon then exits 0 or 1 depends on
# libfuse's multi-threaded loop racing the unmount (seen: exit 1 once in
# eleven mkfs runs on the debug kernel, same log lines), so only its death
# by a signal is named here. The cases' own mounts are held to exit 0.
_famfs_user_mkfs() {
	_famfs_user_run "mkfs.famfs -f" mkfs.famfs --fuse -f "$FH_DAX"
	_famfs_user_gone "after mkfs" "$1" crashes
}

# _famfs_user_settle: return once famfs_fused has finished with the last
# request: every famfs_fused is gone, or all its threads have slept (S) for
# half a second running (a daemon a request kills dies while it still
# runs, after its reply); at most 1 s (x the TCG scale). Counted as `wait`.
_famfs_user_settle() {
	_phase wait
	_fs_n=0
	_fs_idle=0
	while [ "$_fs_n" -lt $((20 * ${FH_TIMEOUT_SCALE%.*})) ] && [ "$_fs_idle" -lt 10 ]; do
		_fs_pids=$(_famfs_fused_pids)
		[ -n "$_fs_pids" ] || break
		_fs_busy=0
		for _fs_p in $_fs_pids; do
			for _fs_t in /proc/"$_fs_p"/task/*/stat; do
				case $(cut -d' ' -f3 "$_fs_t" 2> /dev/null) in
				S | "") ;;
				*) _fs_busy=1 ;;
				esac
			done
		done
		if [ "$_fs_busy" = 0 ]; then _fs_idle=$((_fs_idle + 1)); else _fs_idle=0; fi
		sleep 0.05
		_fs_n=$((_fs_n + 1))
	done
	_phase_end
}

# _famfs_user_umount [quiet]: unmount, then the daemon must exit (umount
# returns before it does).
_famfs_user_umount() {
	if grep -q " $FAMFS_MNT " /proc/mounts; then
		umount "$FAMFS_MNT" || echo "umount: exit $?"
	fi
	_famfs_user_gone umount "$1"
}

# _famfs_user_record: record everything the running famfs_fused reads from
# and writes to /dev/fuse from now on (strace attached to all its threads,
# one file per thread, $FH_ARTIFACTS/fuse.*); `fh-guest fuse-fmaps`
# decodes it. Returns once every thread is traced.
FAMFS_RECORDER=/opt/famfs-harness/strace
_famfs_user_record() {
	[ -x "$FAMFS_RECORDER" ] || _notrun "no recorder ($FAMFS_RECORDER) in the image"
	_pid=$(_famfs_fused_pids)
	_pid=${_pid%% *}
	[ -n "$_pid" ] || { echo "record: no famfs_fused running"; return 1; }
	"$FAMFS_RECORDER" -f -ff -qq -y -x -e trace=read,readv,write,writev \
		-e read=all -e write=all -o "$FH_ARTIFACTS/fuse" -p "$_pid" 2>> "$FH_ARTIFACTS/famfs.log" &
	_famfs_recorder=$!
	_cleanup_add "_famfs_user_record_stop"
	n=0
	while grep -qs '^TracerPid:[[:space:]]*0$' /proc/"$_pid"/task/*/status; do
		n=$((n + 1))
		[ "$n" -gt $((600 * ${FH_TIMEOUT_SCALE%.*})) ] && { echo "record: not attached 30 s later"; return 1; }
		sleep 0.05
	done
}

# _famfs_user_record_stop: detach the recorder (the daemon runs on) and
# wait until it has written everything.
_famfs_user_record_stop() {
	[ -n "$_famfs_recorder" ] || return 0
	# TERM: a background job of a script ignores INT.
	kill -TERM "$_famfs_recorder" 2> /dev/null
	wait "$_famfs_recorder" 2> /dev/null
	_famfs_recorder=
}

# _famfs_user_sum FILE...: "sha256 name" per file, read in 4 MiB reads (a
# kernel that WARNs per read(2) of a famfs file, as V10 with lockdep does,
# then WARNs a few times, not once per 4 KiB).
_famfs_user_sum() {
	for f in "$@"; do
		echo "$(dd if="$f" bs=4M status=none | sha256sum | cut -d' ' -f1) $f"
	done
}

# _famfs_user_run WHAT CMD...: run a famfs command, its output kept in the
# artifacts, and print WHAT with the exit status.
_famfs_user_run() {
	what=$1
	shift
	case "$1 $2" in
	"mkfs.famfs "* | "famfs mount") _phase mount ;;
	*) _phase body ;;
	esac
	"$@" >> "$FH_ARTIFACTS/famfs.log" 2>&1
	_st=$?
	_phase_end
	echo "$what: exit $_st"
}
