//! The kernel stage's one entry point: any kernel input (Debian's package,
//! a tree, a git commit, a named kernel, a patch series on any of them, a
//! prebuilt image) resolved into a built kernel.

use super::build::{self as kbuild, KernelArtifacts};
use super::named::Base;
use crate::base::cache::Cache;
use crate::events::note;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Which kernel to test.
#[derive(Debug, Clone)]
pub enum KernelChoice {
    /// Debian's linux-source package, fetched into the cache.
    Default,
    /// A kernel tree, built out of tree.
    Src(PathBuf),
    /// A prebuilt bzImage (with its .config and vmlinux).
    Image {
        image: PathBuf,
        config: Option<PathBuf>,
        vmlinux: Option<PathBuf>,
    },
    /// One commit of a local git repository, exported into the cache.
    Git { repo: PathBuf, rev: String },
    /// A named kernel from `kernel-configs/kernels/`.
    Named(String),
}

/// What the kernel stage is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub choice: KernelChoice,
    /// Fragment names; None means kernel-configs/default.
    pub fragments: Option<Vec<String>>,
    /// Patch series applied on the base in this order (`--kernel-patches`,
    /// repeated); for a named kernel, after its own series (a mutant).
    pub patches: Vec<PathBuf>,
    /// Accept patches that apply only with fuzz or offsets.
    pub allow_fuzz: bool,
    /// Configure and verify the kernel but do not build it.
    pub config_only: bool,
    /// The coverage variant: the `coverage` fragment and patch series on
    /// top of whatever else is chosen (gcov for fs/fuse/ and fs/dax.c).
    pub coverage: bool,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            choice: KernelChoice::Default,
            fragments: None,
            patches: vec![],
            allow_fuzz: false,
            config_only: false,
            coverage: false,
        }
    }
}

/// What a kernel choice resolves to before anything is fetched or built.
pub struct KernelPlan {
    pub base: Base,
    pub patches: Vec<PathBuf>,
    pub allow_fuzz: bool,
    pub fragments: Vec<String>,
    /// The named kernel, when one was chosen.
    pub named: Option<super::named::NamedKernel>,
}

impl Request {
    /// Whether resolving this request builds a kernel (it does unless the
    /// kernel is prebuilt).
    pub fn builds(&self) -> bool {
        !matches!(self.choice, KernelChoice::Image { .. })
    }

    /// The named kernel chosen, loaded from `root`'s `kernel-configs/`.
    pub fn named(&self, root: &Path) -> Result<Option<super::named::NamedKernel>> {
        match &self.choice {
            KernelChoice::Named(n) => super::named::load(root, n).map(Some),
            _ => Ok(None),
        }
    }

    /// Resolve into a base, a series and fragments. A named kernel whose
    /// fixture is absent fails with [`super::named::Unavailable`].
    pub fn plan(&self, root: &Path) -> Result<KernelPlan> {
        let (base, patches, allow_fuzz, fragments, named) = match &self.choice {
            KernelChoice::Named(name) => {
                let k = super::named::load(root, name)?;
                k.check_available()?;
                let (b, p, f, fr) = (
                    k.base.clone(),
                    [k.patches.clone(), self.patches.clone()].concat(),
                    k.allow_fuzz,
                    k.fragments.clone(),
                );
                (b, p, f, fr, Some(k))
            }
            other => {
                let base = match other {
                    KernelChoice::Src(d) => Base::Tree(d.clone()),
                    KernelChoice::Git { repo, rev } => Base::Git {
                        repo: repo.clone(),
                        rev: rev.clone(),
                    },
                    _ => Base::Debian,
                };
                let frags = self
                    .fragments
                    .clone()
                    .unwrap_or_else(|| vec!["default".into()]);
                (base, self.patches.clone(), self.allow_fuzz, frags, None)
            }
        };
        let (mut patches, mut fragments) = (patches, fragments);
        if self.coverage {
            patches.push(root.join(COVERAGE_SERIES));
            fragments.push("coverage".into());
        }
        let fragments =
            super::config::expand_fragment_names(&root.join("kernel-configs"), &fragments)?;
        Ok(KernelPlan {
            base,
            patches,
            allow_fuzz,
            fragments,
            named,
        })
    }
}

/// Build or find the kernel `req` asks for; `root` holds kernel-configs/.
pub fn resolve(req: &Request, root: &Path, cache: &Cache) -> Result<KernelArtifacts> {
    if let KernelChoice::Image {
        image,
        config,
        vmlinux,
    } = &req.choice
    {
        let k = kbuild::prebuilt(image, config.as_deref(), vmlinux.as_deref())?;
        note(format!(
            "kernel: prebuilt {} ({}), config {}",
            k.bzimage.display(),
            k.release,
            k.config_path.display()
        ));
        return Ok(k);
    }
    let plan = req.plan(root)?;
    if let Some(k) = &plan.named {
        note(format!(
            "kernel: {} ({}): {}",
            k.name,
            k.file.display(),
            k.description
        ));
    }
    // Load the series first: a bad series fails before any download.
    let series = super::patches::load_all(&plan.patches)?;
    let mut log = |m: &str| note(m);
    let base = match &plan.base {
        Base::Debian => {
            super::source::fetch_debian(cache, super::source::DEFAULT_PACKAGE, &mut log)?
        }
        Base::Tree(dir) => super::source::open_tree(dir)?,
        Base::Git { repo, rev } => super::source::from_git(cache, repo, rev, &mut log)?,
    };
    let build = |source, config_only| {
        kbuild::build(&kbuild::BuildRequest {
            source,
            fragments_dir: &root.join("kernel-configs"),
            fragments: plan.fragments.clone(),
            cache,
            jobs: kbuild::jobs(),
            config_only,
        })
    };
    let src = match &series {
        Some(s) => {
            let user_tree =
                base.identity.kind != "debian-package" && base.identity.commit.is_none();
            if !req.config_only && !user_tree {
                // The unpatched base first (a no-op when cached): the series'
                // build is then seeded from its objects, and so is the build
                // of every later version of the series on this base.
                build(&base, false).context("building the base the series applies to")?;
            }
            super::source::patched(cache, &base, s, plan.allow_fuzz, &mut log)?
        }
        None => base,
    };
    let mut art = build(&src, req.config_only)?;
    note(format!(
        "kernel: FUSE DAX modes: {}",
        fuse_dax_modes(&art.config)
    ));
    if let Some(k) = plan.named {
        art.name = Some(k.name);
        art.known_defects = k.known_defects;
        art.expunged = k.expunged;
    }
    Ok(art)
}

/// What the kernel was built to do about famfs: the cases' oracle for the
/// capability (see [`crate::contract::FamfsBuild`]).
pub fn famfs_build(k: &KernelArtifacts) -> crate::contract::FamfsBuild {
    crate::contract::FamfsBuild {
        configured: k.config.enabled("FUSE_FAMFS_DAX"),
        abi: k.famfs_abi.as_ref().map(|a| a.profile.clone()),
        evidence: k.famfs_abi.as_ref().map_or_else(
            || "a prebuilt kernel: no source to read its famfs ABI from".to_string(),
            |a| a.evidence.clone(),
        ),
    }
}

/// Which of FUSE's two DAX modes a kernel has, for the build's status line.
pub fn fuse_dax_modes(cfg: &super::config::DotConfig) -> String {
    let v = |sym: &str| {
        if cfg.enabled(sym) {
            format!("CONFIG_{sym}=y")
        } else {
            format!("CONFIG_{sym} not set")
        }
    };
    format!(
        "virtio-fs DAX {}, famfs {}",
        v("FUSE_DAX"),
        v("FUSE_FAMFS_DAX")
    )
}

/// The patch series of the coverage variant, below the checkout.
pub const COVERAGE_SERIES: &str = "kernel-configs/patches/coverage/series";

/// `--profile auto`: the profile of the famfs ABI the kernel source defines.
pub const AUTO_PROFILE: &str = "auto";

/// The profile a run uses: `asked`, or with [`AUTO_PROFILE`] the one of the
/// kernel source's famfs ABI (said, with the evidence).
pub fn profile(asked: &str, k: &KernelArtifacts) -> String {
    if asked != AUTO_PROFILE {
        return asked.to_string();
    }
    let abi = k.famfs_abi.as_ref();
    let p = super::abi::auto_profile(abi).to_string();
    note(format!(
        "profile: {p} ({})",
        abi.map_or(
            "a prebuilt kernel: no source to read the famfs ABI from; give --profile to choose",
            |a| &a.evidence
        )
    ));
    p
}
