//! The image stage: the static guest program (`guest_program`) and the
//! initramfs described by `images/default.yaml` (`initramfs`, written as a
//! newc archive by `cpio`), cached by content, with the famfs user space
//! layer (`famfs_user`). One entry point, [`prepare`]. It knows nothing of
//! verdicts.

pub mod cpio;
pub mod famfs_user;
pub mod guest_program;
pub mod initramfs;

use crate::base::cache::Cache;
use crate::events::Stage;
use crate::kernel::named::NamedKernel;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What the image stage is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The harness's own workspace, for building the guest program.
    pub workspace: PathBuf,
    /// The famfs user space for the `famfs-user` cases; None: the named
    /// kernel's `famfs-user`, if it names one.
    pub famfs_user: Option<famfs_user::Source>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            workspace: guest_program::workspace_root(),
            famfs_user: None,
        }
    }
}

/// The image stage's product: what every boot's initramfs is made from.
pub struct Image {
    pub guest_bin_dir: PathBuf,
    /// The base initramfs (with the famfs user space layer when there is
    /// one); each boot adds its plan and the cases.
    pub base: PathBuf,
    /// The base with the cases and an empty plan, for the accelerator probe.
    pub probe: PathBuf,
    /// The famfs user space in the image, or why there is none.
    pub famfs_user: std::result::Result<famfs_user::FamfsUser, String>,
}

impl Image {
    /// Ok when the image has a famfs user space, else why not.
    pub fn lacks_famfs_user(&self) -> Result<(), &str> {
        self.famfs_user.as_ref().map(|_| ()).map_err(String::as_str)
    }
}

/// Build the guest program and the base initramfs (`root`'s
/// images/default.yaml), add the famfs user space when the run has one that
/// can speak `profile`, and assemble the probe image with `cases_dir`.
pub fn prepare(
    req: &Request,
    root: &Path,
    cases_dir: &Path,
    named: Option<&NamedKernel>,
    profile: &str,
    cache: &Cache,
) -> Result<Image> {
    let stage = Stage::start("guest program");
    let guest_bin_dir = guest_program::build(&req.workspace)?;
    stage.finish("built");
    let base = initramfs::build_base(&root.join("images/default.yaml"), &guest_bin_dir, cache)?;
    let famfs_user = famfs_user_of(req, root, named, cache)?.and_then(|u| {
        let pushes = famfs_proto::Profile::parse(profile)
            .map(|p| p.pushes_daxdevs())
            .unwrap_or(false);
        match (pushes, u.pushes) {
            (true, Some(false)) => Err(format!(
                "the famfs user space at hand cannot push dax devices, which the {profile} profile needs: its libfuse's fuse_kernel.h has no FUSE_DEV_IOC_DAXDEV_OPEN (famfs builds its push code only against a libfuse with the famfs push ioctl; give one with --famfs-deps, or a prefix with --famfs-bin)"
            )),
            _ => Ok(u),
        }
    });
    let base = match &famfs_user {
        Ok(u) => {
            let out = cache.dir("images")?.join(format!(
                "{}+famfs-user-{}.cpio",
                base.file_stem().unwrap_or_default().to_string_lossy(),
                &u.identity.replace('/', "_")
            ));
            // Rebuilt every time (a second or less): a --famfs-bin prefix
            // may have changed under the same path.
            let mut data = std::fs::read(&base)?;
            data.extend(famfs_user::layer(u)?);
            crate::base::cache::write_atomic(&out, &data)?;
            out
        }
        Err(_) => base,
    };
    let probe = cache.dir("images")?.join("probe.cpio");
    initramfs::assemble(&base, &initramfs::overlay("{}", cases_dir, "")?, &probe)?;
    Ok(Image {
        guest_bin_dir,
        base,
        probe,
        famfs_user,
    })
}

/// The famfs user space of a run: the request's, else the one the named
/// kernel names (`famfs-user: DIR`). Err(why) when there is none or its
/// fixture is absent: the `famfs-user` cases are then not run.
fn famfs_user_of(
    req: &Request,
    root: &Path,
    named: Option<&NamedKernel>,
    cache: &Cache,
) -> Result<std::result::Result<famfs_user::FamfsUser, String>> {
    use famfs_user::{resolve, Source};
    if let Some(s) = &req.famfs_user {
        return resolve(s, root, cache).map(Ok);
    }
    match named.and_then(|k| k.famfs_user.as_ref().map(|d| (k, d))) {
        None => Ok(Err("no famfs user space: pass --famfs-deps DIR [--famfs-src DIR] or --famfs-bin DIR, or name one in the kernel's file (famfs-user: DIR)".into())),
        Some((k, d)) if !d.exists() => Ok(Err(format!(
            "the famfs user space kernel {} names is not here: {} does not exist",
            k.name,
            d.display()
        ))),
        Some((_, d)) => resolve(
            &Source::Sources {
                deps: d.clone(),
                tree: None,
            },
            root,
            cache,
        )
        .map(Ok),
    }
}
