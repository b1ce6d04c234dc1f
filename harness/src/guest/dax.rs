//! Dax device helpers for the guest: set up devdax on emulated pmem, switch
//! a device between `device_dax` and `fsdev_dax` through sysfs, and mmap it.

use crate::contract::topology::{DaxMode, PmemSpec};
use crate::contract::DaxDevice;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DAX_BUS: &str = "/sys/bus/dax";

fn read_trim(p: &str) -> Result<String> {
    Ok(std::fs::read_to_string(p)
        .with_context(|| format!("reading {p}"))?
        .trim()
        .to_string())
}

fn write_sysfs(p: &str, v: &str) -> Result<()> {
    std::fs::write(p, v).with_context(|| format!("writing `{v}` to {p}"))
}

/// Name of the driver a dax device is bound to ("" when unbound).
pub fn driver_of(name: &str) -> String {
    std::fs::read_link(format!("{DAX_BUS}/devices/{name}/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

pub fn device_info(name: &str) -> Result<DaxDevice> {
    let base = format!("{DAX_BUS}/devices/{name}");
    if !Path::new(&base).exists() {
        bail!("no dax device {name} ({base} missing)");
    }
    Ok(DaxDevice {
        path: format!("/dev/{name}"),
        size: read_trim(&format!("{base}/size"))?
            .parse()
            .context("dax size")?,
        align: read_trim(&format!("{base}/align"))
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        driver: driver_of(name),
    })
}

fn wait_for(path: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if Path::new(path).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Path::new(path).exists()
}

fn run_tool(argv: &[&str]) -> Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| {
            format!(
                "running {} (is it in the image / on the host for vng?)",
                argv[0]
            )
        })?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Turn the emulated pmem into a devdax device with the requested
/// alignment, then bind it as the topology asks.
pub fn setup_pmem(spec: &PmemSpec) -> Result<Vec<DaxDevice>> {
    if spec.kind == crate::contract::topology::PmemKind::Cxl {
        setup_cxl_region(spec)?;
        let align = spec.align.to_string();
        run_tool(&[
            "ndctl",
            "create-namespace",
            "-m",
            "devdax",
            "-r",
            "region0",
            "--align",
            &align,
        ])?;
        return finish_dax(spec);
    }
    if !wait_for("/sys/bus/nd/devices/namespace0.0", Duration::from_secs(20)) {
        bail!("no pmem namespace appeared (/sys/bus/nd/devices/namespace0.0); is the NVDIMM/memmap pmem configured and CONFIG_ACPI_NFIT / X86_PMEM_LEGACY built in?");
    }
    let align = spec.align.to_string();
    run_tool(&[
        "ndctl",
        "create-namespace",
        "-f",
        "-e",
        "namespace0.0",
        "--mode=devdax",
        "--align",
        &align,
    ])?;
    finish_dax(spec)
}

/// A persistent region over the one CXL type-3 device (interleave 1).
fn setup_cxl_region(spec: &PmemSpec) -> Result<()> {
    if !wait_for("/sys/bus/cxl/devices/mem0", Duration::from_secs(30)) {
        bail!("no CXL memdev appeared (/sys/bus/cxl/devices/mem0); is CONFIG_PCI_MMCONFIG set (cxl_pci needs extended config space) and pcie_ports=compat on the command line?");
    }
    if !wait_for("/sys/bus/cxl/devices/decoder0.0", Duration::from_secs(10)) {
        bail!("no CXL root decoder (decoder0.0): is CONFIG_CXL_ACPI set and the CXL fixed memory window configured?");
    }
    let size = format!("{}M", spec.size_mib);
    run_tool(&[
        "cxl",
        "create-region",
        "-m",
        "-t",
        "pmem",
        "-d",
        "decoder0.0",
        "-w",
        "1",
        "-g",
        "4096",
        "mem0",
        "-s",
        &size,
    ])?;
    if !wait_for("/sys/bus/nd/devices/region0", Duration::from_secs(10)) {
        bail!(
            "the CXL pmem region did not appear as an nd region (region0): is CONFIG_CXL_PMEM set?"
        );
    }
    Ok(())
}

/// The dax device the setup produced, bound as the topology asks.
fn finish_dax(spec: &PmemSpec) -> Result<Vec<DaxDevice>> {
    let name = first_dax_device().context("no dax device appeared after creating the namespace")?;
    if !wait_for(&format!("/dev/{name}"), Duration::from_secs(10)) {
        bail!("/dev/{name} did not appear");
    }
    if spec.mode == DaxMode::Fsdev {
        bind(&name, "fsdev_dax")?;
    }
    Ok(vec![device_info(&name)?])
}

/// The lowest-numbered daxN.M device on the bus.
pub fn first_dax_device() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{DAX_BUS}/devices"))
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dax"))
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Bind a dax device to `device_dax` or `fsdev_dax` through sysfs.
pub fn bind(name: &str, driver: &str) -> Result<()> {
    if !matches!(driver, "device_dax" | "fsdev_dax") {
        bail!("unknown dax driver `{driver}` (device_dax or fsdev_dax)");
    }
    let cur = driver_of(name);
    if cur == driver {
        return Ok(());
    }
    if !cur.is_empty() {
        write_sysfs(&format!("{DAX_BUS}/drivers/{cur}/unbind"), name)?;
        if cur == "fsdev_dax" {
            // Drop the id added by new_id so device_dax may claim it again.
            let _ = write_sysfs(&format!("{DAX_BUS}/drivers/fsdev_dax/remove_id"), name);
        }
    }
    if driver == "fsdev_dax" {
        write_sysfs(&format!("{DAX_BUS}/drivers/fsdev_dax/new_id"), name)?;
    } else {
        write_sysfs(&format!("{DAX_BUS}/drivers/{driver}/bind"), name)?;
    }
    let now = driver_of(name);
    if now != driver {
        bail!("after binding {name} to {driver}, its driver is `{now}`");
    }
    Ok(())
}

/// mmap `len` bytes of `dev` at `offset`, write a pattern, read it back.
/// Returns a one-line result suitable for golden output.
pub fn mmap_pattern(dev: &str, len: usize, offset: i64) -> Result<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .with_context(|| format!("opening {dev}"))?;
    let seed = 0x9e37_79b9_7f4a_7c15u64 ^ (offset as u64);
    let want = |i: usize| seed.wrapping_mul(i as u64 + 1) ^ (i as u64);
    let (mut bad, mut first_bad) = (0usize, None);
    {
        let mut m = match super::sys::Mapping::shared(&f, len, offset as u64, true) {
            Ok(m) => m,
            Err(e) => return Ok(format!("mmap {dev} len {len}: failed {e}")),
        };
        for (i, w) in m.words_mut().iter_mut().enumerate() {
            *w = want(i);
        }
        for (i, w) in m.words().iter().enumerate() {
            if *w != want(i) {
                bad += 1;
                first_bad.get_or_insert(i * 8);
            }
        }
    }
    // Read back through a fresh mapping too: the data must be in the device,
    // not only in this mapping.
    let m2 = match super::sys::Mapping::shared(&f, len, offset as u64, false) {
        Ok(m) => m,
        Err(e) => return Ok(format!("second mmap {dev}: failed {e}")),
    };
    for (i, w) in m2.words().iter().enumerate() {
        if *w != want(i) {
            bad += 1;
            first_bad.get_or_insert(i * 8);
        }
    }
    Ok(match first_bad {
        None => format!("mmap {len} bytes at offset {offset}: pattern ok"),
        Some(o) => {
            format!("mmap {len} bytes at offset {offset}: {bad} bad words, first at byte {o}")
        }
    })
}
