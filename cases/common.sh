# Helpers shared by the cases; each case starts with `. "$FH_COMMON"`.
# The runner sets: FH_CASE_ID, FH_CASE_DIR (cwd, scratch), FH_ARTIFACTS
# (files kept with the results), FH_TOOL (the guest tool), FH_PROFILE,
# FH_DAX / FH_DAX_NAME (when the case asked for pmem), FH_NOTRUN_FILE.

# Stop here and report the case as not run, with the reason.
_notrun() {
	echo "$*" > "$FH_NOTRUN_FILE"
	exit 0
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
_wait_for() {
	n=0
	while [ ! -e "$1" ]; do
		n=$((n + 1))
		[ "$n" -gt $(($2 * 20)) ] && return 1
		sleep 0.05
	done
	return 0
}

# Gate for famfs cases: the kernel must offer the DAX-fmap capability of the
# run's protocol profile in FUSE INIT. Anything else (a kernel without famfs,
# or one whose numbering differs from the profile) is "not run", with why.
_require_famfs_cap() {
	msg=$("$FH_TOOL" famfs-cap "$FH_PROFILE" 2>&1)
	case $? in
	0) ;;
	3) _notrun "$msg" ;;
	*) _fail "capability gate failed: $msg" ;;
	esac
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

# _expect WHAT GOT WANT: one line that reads the same on every kernel when
# GOT is what this kernel must give (WANT), and says both when it is not.
_expect() {
	if [ "$2" = "$3" ]; then
		echo "$1: as the kernel must"
	else
		echo "$1: $2, but this kernel must give $3"
	fi
}

# _lkdtm TYPE: provoke the kernel's crash-test driver (LKDTM) with one of the
# types it lists; not run when the kernel has no LKDTM or lacks TYPE.
_lkdtm() {
	_lkdtm_dir=/sys/kernel/debug/provoke-crash
	[ -w "$_lkdtm_dir/DIRECT" ] || _notrun "$_lkdtm_dir/DIRECT is missing (LKDTM)"
	# Reading DIRECT lists the types this kernel's LKDTM has.
	grep -qx "$1" "$_lkdtm_dir/DIRECT" || _notrun "this kernel's LKDTM has no $1"
	echo "$1" > "$_lkdtm_dir/DIRECT"
}

# _wait_kmsg PATTERN SECONDS: wait until the kernel log has a line matching
# PATTERN (grep -E); fails the case when it does not come in time.
_wait_kmsg() {
	_n=0
	while ! dmesg | grep -qE "$1"; do
		_n=$((_n + 1))
		[ "$_n" -le "$2" ] || _fail "no kernel log line matching '$1' within $2 s"
		sleep 1
	done
}
