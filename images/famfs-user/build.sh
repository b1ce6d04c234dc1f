#!/usr/bin/env bash
# Offline build of the famfs user space for the harness:
#   build.sh DEPS OUT [FAMFS_TREE]
# DEPS holds the archives (or unpacked trees) of libfuse, mongoose,
# C-Thread-Pool, cmake-modules, multichase and cursor_heap (and of famfs
# itself when FAMFS_TREE is not given), named OWNER+REPO-COMMIT.tar.gz or
# REPO/ (the layout of ../shared/famfs-user). OUT gets bin/ (famfs,
# mkfs.famfs, famfs_fused, pcq; RUNPATH $ORIGIN/../lib), lib/ (libfuse3),
# build.log and unit-tests.log (famfs's unit tests, run as root in private
# mount, network and pid namespaces so nothing they write reaches the host).
# Nothing is fetched: what CMake would clone with git is served from local
# repositories made from DEPS (googletest from Debian's /usr/src/googletest).
# Exit 3: an input is missing (the message names it and where it looked).
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 DEPS OUT [FAMFS_TREE]" >&2
	exit 2
fi
DEPS=$(cd "$1" && pwd)
OUT=$2
TREE=${3:-}
JOBS=${JOBS:-2}
GTEST_SRC=${GTEST_SRC:-/usr/src/googletest}
SCRATCH=$OUT/scratch
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH" "$OUT/bin" "$OUT/lib"
cd "$SCRATCH"

missing() {
	echo "famfs-user: $*" >&2
	exit 3
}
for t in gcc g++ make cmake meson ninja pkg-config git tar readelf unshare ctest; do
	command -v $t >/dev/null || missing "the build needs \`$t\` on the host"
done
for p in libdaxctl libcurl libsystemd uuid zlib yaml-0.1; do
	pkg-config --exists $p || missing "the build needs the development files of $p (pkg-config $p)"
done
[ -f "$GTEST_SRC/CMakeLists.txt" ] || missing "no googletest sources in $GTEST_SRC (Debian package googletest)"

# unpack NAME DEST: REPO/ or OWNER+REPO-*.tar.gz from DEPS, as DEST.
unpack() {
	local name=$1 dest=$2 a
	if [ -d "$DEPS/$name" ]; then
		cp -a "$DEPS/$name" "$dest"
		return
	fi
	set -- "$DEPS"/*+"$name"-*.tar.gz
	[ -f "$1" ] || missing "no $name in $DEPS (looked for $name/ and *+$name-COMMIT.tar.gz)"
	[ $# -eq 1 ] || missing "more than one $name archive in $DEPS: $*"
	a=$1
	mkdir -p "$dest.x"
	tar -xzf "$a" -C "$dest.x"
	mv "$dest.x"/* "$dest"
	rmdir "$dest.x"
}

# The famfs tree with the libraries its build expects inside it.
if [ -n "$TREE" ]; then
	[ -f "$TREE/CMakeLists.txt" ] && [ -d "$TREE/src" ] ||
		missing "$TREE is not a famfs source tree (no CMakeLists.txt and src/)"
	mkdir famfs
	tar -C "$TREE" --exclude=./debug --exclude=./release --exclude=./.git -cf - . | tar -C famfs -xf -
else
	unpack famfs famfs
fi
grep -q famfs_fused famfs/CMakeLists.txt || missing "the famfs tree has no famfs_fused target (not a FUSE-era famfs)"
for d in libfuse mongoose C-Thread-Pool cmake-modules; do
	[ -e "famfs/$d" ] || unpack $d "famfs/$d"
done
# famfs_fused's install RUNPATH is fixed to /usr/local/lib64: relative
# instead, so bin/ and lib/ work wherever they are copied.
sed -i 's|INSTALL_RPATH "/usr/local/lib64"|INSTALL_RPATH "$ORIGIN/../lib"|' famfs/CMakeLists.txt

# Local git repositories for what CMake clones; any other clone fails.
GITSRV=$SCRATCH/gitsrv
mkdir -p "$GITSRV"
export GIT_AUTHOR_NAME=harness GIT_AUTHOR_EMAIL=harness@localhost
export GIT_COMMITTER_NAME=harness GIT_COMMITTER_EMAIL=harness@localhost
export GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$SCRATCH/gitconfig
export GIT_ALLOW_PROTOCOL=file GIT_TERMINAL_PROMPT=0
: >"$GIT_CONFIG_GLOBAL"
git config --global advice.detachedHead false
git config --global protocol.file.allow always
serve() { # serve NAME DIR BRANCH [TAG]
	local w=$GITSRV/$1.work
	cp -a "$2" "$w"
	git -C "$w" init -q -b "$3"
	git -C "$w" add -A
	git -C "$w" commit -q -m "$1"
	[ -z "${4:-}" ] || git -C "$w" tag "$4"
	git clone -q --bare "$w" "$GITSRV/$1.git"
	rm -rf "$w"
}
unpack multichase "$SCRATCH/multichase.src"
unpack cursor_heap "$SCRATCH/cursor_heap.src"
serve googletest "$GTEST_SRC" main release-1.12.1
serve multichase "$SCRATCH/multichase.src" dax
serve cursor_heap "$SCRATCH/cursor_heap.src" master
rm -rf "$SCRATCH"/*.src
for r in google/googletest jagalactic/multichase jagalactic/cursor_heap; do
	n=${r#*/}
	git config --global --add "url.file://$GITSRV/$n.git.insteadOf" "https://github.com/$r.git"
	git config --global --add "url.file://$GITSRV/$n.git.insteadOf" "https://github.com/$r"
done

mkdir -p famfs/compat
cat >famfs/compat/daxctl_famfs.h <<'EOF'
/* Prototype missing from Debian's <daxctl/libdaxctl.h> (libdaxctl 76). */
#ifndef DAXCTL_FAMFS_COMPAT_H
#define DAXCTL_FAMFS_COMPAT_H
struct daxctl_dev;
int daxctl_dev_enable_famfs(struct daxctl_dev *dev);
#endif
EOF
cat >famfs/compat/daxctl_famfs.c <<'EOF'
// SPDX-License-Identifier: Apache-2.0
/*
 * daxctl_dev_enable_famfs() for a libdaxctl that lacks it (Debian 12's 76).
 * Binds the dax device to the fsdev_dax driver through sysfs:
 *   - already bound to fsdev_dax            -> 0
 *   - bound to another driver               -> -EBUSY
 *   - else write the name to .../fsdev_dax/new_id, then to .../bind if the
 *     device is still unbound, and check the driver link.
 * Returns 0 or a negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <daxctl/libdaxctl.h>
#include "daxctl_famfs.h"

#define FSDEV_DRV "/sys/bus/dax/drivers/fsdev_dax"

/* name of the driver bound to devname: 1 + name, 0 if unbound, <0 error */
static int dax_bound_driver(const char *devname, char *drv, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/bus/dax/devices/%s/driver", devname);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	snprintf(drv, len, "%s", base);
	return 1;
}

static int sysfs_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int daxctl_dev_enable_famfs(struct daxctl_dev *dev)
{
	const char *devname;
	char drv[NAME_MAX + 1];
	int rc;

	if (!dev)
		return -EINVAL;
	devname = daxctl_dev_get_devname(dev);
	if (!devname)
		return -ENODEV;
	if (access(FSDEV_DRV, F_OK) != 0)
		return -EOPNOTSUPP;	/* fsdev_dax driver not loaded/present */

	rc = dax_bound_driver(devname, drv, sizeof(drv));
	if (rc < 0)
		return rc;
	if (rc == 1)
		return strcmp(drv, "fsdev_dax") == 0 ? 0 : -EBUSY;

	/* Unbound: add an id match (may attach at once), then bind. */
	rc = sysfs_write(FSDEV_DRV "/new_id", devname);
	if (rc < 0 && rc != -EEXIST)
		return rc;

	rc = dax_bound_driver(devname, drv, sizeof(drv));
	if (rc == 0) {
		rc = sysfs_write(FSDEV_DRV "/bind", devname);
		if (rc < 0 && rc != -EBUSY && rc != -EEXIST)
			return rc;
		rc = dax_bound_driver(devname, drv, sizeof(drv));
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENXIO;		/* still unbound */
	return strcmp(drv, "fsdev_dax") == 0 ? 0 : -EBUSY;
}
EOF
# Build it into libfamfs (the only library that calls it).
cat >>famfs/CMakeLists.txt <<'EOF'

# offline recipe: daxctl_dev_enable_famfs() replacement for Debian's libdaxctl
target_sources(libfamfs PRIVATE ${PROJECT_SOURCE_DIR}/compat/daxctl_famfs.c)
target_include_directories(libfamfs PRIVATE ${PROJECT_SOURCE_DIR}/compat)
set_source_files_properties(src/famfs_dax.c PROPERTIES
    COMPILE_OPTIONS "-include;${PROJECT_SOURCE_DIR}/compat/daxctl_famfs.h")
EOF


# libfuse (meson) where famfs's CMake looks for it, then famfs (Debug).
mkdir -p famfs/debug
(cd famfs && meson setup -Dexamples=false -Dtests=false -Denable-io-uring=false \
	debug/libfuse ./libfuse && meson compile -j "$JOBS" -C debug/libfuse)
(cd famfs/debug && cmake -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Debug \
	-DCMAKE_INSTALL_RPATH='$ORIGIN/../lib' .. && make -j"$JOBS")

DESTDIR=$SCRATCH/stage cmake --install famfs/debug >/dev/null
for b in famfs mkfs.famfs famfs_fused pcq; do
	install -m 0755 "$SCRATCH/stage/usr/local/bin/$b" "$OUT/bin/$b"
done
real=$(readlink -f famfs/debug/libfuse/lib/libfuse3.so.4)
install -m 0755 "$real" "$OUT/lib/${real##*/}"
ln -sfn "${real##*/}" "$OUT/lib/libfuse3.so.4"
for b in famfs mkfs.famfs famfs_fused; do
	readelf -d "$OUT/bin/$b" | grep -q 'RUNPATH.*\$ORIGIN/../lib' || { echo "$b: RUNPATH is not \$ORIGIN/../lib" >&2; exit 1; }
done

# famfs's unit tests as root, isolated: private /tmp, /opt and /mnt (they
# write there), no network, a sudo that just runs the command.
B=$SCRATCH/famfs/debug
unshare --mount --propagation private --net --pid --fork --mount-proc env B="$B" bash -euo pipefail -c '
cd "$B"
mount -t tmpfs -o mode=1777 ut-tmp /tmp
mount -t tmpfs ut-opt /opt
mount -t tmpfs ut-mnt /mnt
case "$B" in /tmp/*|/opt/*|/mnt/*) mkdir -p "$B"; mount --no-canonicalize --bind . "$B"; cd "$B" ;; esac
mkdir -p /tmp/.shim
printf "#!/bin/sh\nexec \"\$@\"\n" >/tmp/.shim/sudo
chmod 755 /tmp/.shim/sudo
PATH=/tmp/.shim:$PATH ./test/famfs_unit_tests
' >"$OUT/unit-tests.log" 2>&1 || { echo "famfs unit tests failed; see $OUT/unit-tests.log" >&2; tail -20 "$OUT/unit-tests.log" >&2; exit 4; }
cd "$OUT"
rm -rf "$SCRATCH"
grep -E '^\[  PASSED  \]' unit-tests.log
