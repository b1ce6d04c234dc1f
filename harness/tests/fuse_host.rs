//! The famfs capability gate against the host kernel's real /dev/fuse (the
//! host has FUSE but no famfs). Needs root and /dev/fuse; skipped with the
//! reason otherwise.

use famfs_harness::guest::capability;
use famfs_proto::Profile;

fn can_mount() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".into());
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_err()
    {
        return Err("no usable /dev/fuse".into());
    }
    Ok(())
}

#[test]
fn gate_is_not_fooled_by_a_bit_that_means_something_else() {
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return;
    }
    for name in Profile::names() {
        let profile = Profile::by_name(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cap = capability::famfs_capability(&profile, dir.path()).unwrap();
        // No famfs on the host: whatever the bit says, nothing may pass.
        assert!(!cap.usable(), "{name}: {}", cap.describe());
        assert!(!cap.get_fmap_seen, "{name}: the host kernel sent GET_FMAP");
        if cap.init.famfs_offered {
            assert!(
                cap.describe().contains("means something else"),
                "{}",
                cap.describe()
            );
        }
        // The gate unmounted itself.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(
            !mounts.contains(&dir.path().display().to_string()),
            "{mounts}"
        );
    }
}
