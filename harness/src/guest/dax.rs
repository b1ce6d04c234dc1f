//! Dax device helpers for the guest: set up devdax on emulated pmem, switch
//! a device between `device_dax` and `fsdev_dax` through sysfs, and mmap it.

use crate::contract::topology::{DaxMode, PmemSpec};
use crate::contract::DaxDevice;
use crate::guest::sys::wait_for;
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
    // stderr too: some tools say why they did nothing there and exit 0.
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Turn the emulated pmem into devdax devices with the requested
/// alignment, then bind them as the topology asks.
pub fn setup_pmem(spec: &PmemSpec) -> Result<Vec<DaxDevice>> {
    use crate::contract::topology::PmemKind;
    if spec.kind == PmemKind::CxlVolatile {
        // The ram region's dax device appears by itself (dax_cxl), bound to
        // device_dax when the kernel has no dax_kmem to online it.
        setup_cxl_region(spec, "ram")?;
        return finish_dax(spec);
    }
    if spec.kind == PmemKind::Cxl {
        setup_cxl_region(spec, "pmem")?;
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
    // One region per NVDIMM or memmap= range, each with its namespace.
    let align = spec.align.to_string();
    for i in 0..spec.devices {
        let ns = format!("namespace{i}.0");
        if !wait_for(
            &format!("/sys/bus/nd/devices/{ns}"),
            Duration::from_secs(20),
        ) {
            bail!("no pmem namespace appeared (/sys/bus/nd/devices/{ns}); is the NVDIMM/memmap pmem configured and CONFIG_ACPI_NFIT / X86_PMEM_LEGACY built in?");
        }
        run_tool(&[
            "ndctl",
            "create-namespace",
            "-f",
            "-e",
            &ns,
            "--mode=devdax",
            "--align",
            &align,
        ])?;
    }
    finish_dax(spec)
}

/// A region of `ty` (pmem or ram) over the one CXL type-3 device
/// (interleave 1).
fn setup_cxl_region(spec: &PmemSpec, ty: &str) -> Result<()> {
    if !wait_for("/sys/bus/cxl/devices/mem0", Duration::from_secs(30)) {
        bail!("no CXL memdev appeared (/sys/bus/cxl/devices/mem0); is CONFIG_PCI_MMCONFIG set (cxl_pci needs extended config space) and pcie_ports=compat on the command line?");
    }
    if !wait_for("/sys/bus/cxl/devices/decoder0.0", Duration::from_secs(10)) {
        bail!("no CXL root decoder (decoder0.0): is CONFIG_CXL_ACPI set and the CXL fixed memory window configured?");
    }
    if ty == "ram" {
        return create_ram_region(spec.size_mib << 20);
    }
    let size = format!("{}M", spec.size_mib);
    let said = run_tool(&[
        "cxl",
        "create-region",
        "-m",
        "-t",
        ty,
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
    // cxl create-region can exit 0 having created nothing.
    if !wait_for("/sys/bus/cxl/devices/region0", Duration::from_secs(10)) {
        bail!(
            "`cxl create-region -t {ty}` created no region (region0): {}",
            said.trim()
        );
    }
    if ty == "pmem" && !wait_for("/sys/bus/nd/devices/region0", Duration::from_secs(10)) {
        bail!(
            "the CXL pmem region did not appear as an nd region (region0): is CONFIG_CXL_PMEM set?"
        );
    }
    Ok(())
}

/// A ram region over the endpoint's first decoder, through sysfs: Debian
/// 12's `cxl create-region` says ram regions are "not supported yet".
fn create_ram_region(bytes: u64) -> Result<()> {
    const CXL: &str = "/sys/bus/cxl/devices";
    let root = format!("{CXL}/decoder0.0");
    let name = read_trim(&format!("{root}/create_ram_region"))?;
    write_sysfs(&format!("{root}/create_ram_region"), &name)?;
    let region = format!("{CXL}/{name}");
    if !wait_for(&region, Duration::from_secs(10)) {
        bail!("{region} did not appear after writing {root}/create_ram_region");
    }
    write_sysfs(&format!("{region}/interleave_granularity"), "4096")?;
    write_sysfs(&format!("{region}/interleave_ways"), "1")?;
    write_sysfs(&format!("{region}/size"), &bytes.to_string())?;
    // The memdev's endpoint port holds its decoders (endpointN/decoderN.0).
    let endpoint = std::fs::read_dir(CXL)
        .context("reading the cxl bus")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("endpoint"))
        .context("no CXL endpoint port (endpointN) on the cxl bus")?;
    let decoder = format!("decoder{}.0", endpoint.trim_start_matches("endpoint"));
    let ep = format!("{CXL}/{decoder}");
    write_sysfs(&format!("{ep}/mode"), "ram")?;
    write_sysfs(&format!("{ep}/dpa_size"), &bytes.to_string())?;
    write_sysfs(&format!("{region}/target0"), &decoder)?;
    write_sysfs(&format!("{region}/commit"), "1")?;
    write_sysfs("/sys/bus/cxl/drivers/cxl_region/bind", &name)?;
    Ok(())
}

/// The dax devices the setup produced, bound as the topology asks.
fn finish_dax(spec: &PmemSpec) -> Result<Vec<DaxDevice>> {
    let want = spec.devices as usize;
    let start = Instant::now();
    // A CXL region's device appears asynchronously.
    while dax_devices().len() < want && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let names = dax_devices();
    if names.len() < want {
        bail!(
            "{} dax device(s) appeared after creating the namespaces or regions ({}), {want} wanted{}",
            names.len(),
            names.join(" "),
            if spec.kind == crate::contract::topology::PmemKind::CxlVolatile {
                format!(
                    "; is CONFIG_DEV_DAX_CXL set? (cxl bus: {})",
                    std::fs::read_dir("/sys/bus/cxl/devices")
                        .map(|d| d
                            .flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(" "))
                        .unwrap_or_default()
                )
            } else {
                String::new()
            }
        );
    }
    let mut devices = Vec::new();
    for name in names.into_iter().take(want) {
        if !wait_for(&format!("/dev/{name}"), Duration::from_secs(10)) {
            bail!("/dev/{name} did not appear");
        }
        if driver_of(&name).is_empty() {
            bind(&name, "device_dax")?;
        }
        if spec.mode == DaxMode::Fsdev {
            bind(&name, "fsdev_dax")?;
        }
        devices.push(device_info(&name)?);
    }
    Ok(devices)
}

/// The daxN.M devices on the bus, by region then id (dax2.0 before dax10.0).
pub fn dax_devices() -> Vec<String> {
    let mut names: Vec<(u32, u32, String)> = std::fs::read_dir(format!("{DAX_BUS}/devices"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| {
                    let (r, i) = n.strip_prefix("dax")?.split_once('.')?;
                    Some((r.parse().ok()?, i.parse().ok()?, n))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().map(|(_, _, n)| n).collect()
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

/// `hwpoison-inject NAME DOFF UNTIL`: report the page at device offset
/// DOFF of dax device NAME failed, through HWPOISON_INJECT's corrupt-pfn
/// (the page frame from the device's physical start in sysfs), every 5 ms
/// until the file UNTIL exists (at most 300 s): a memory failure that can
/// meet whatever the case does meanwhile. What each injection returned goes
/// to stderr as a tally; stdout says whether injections ran.
pub fn hwpoison_inject(name: &str, doff: u64, until: &str) -> Result<String> {
    const CORRUPT: &str = "/sys/kernel/debug/hwpoison/corrupt-pfn";
    let res = format!("{DAX_BUS}/devices/{name}/resource");
    let start = std::fs::read_to_string(&res).with_context(|| format!("reading {res}"))?;
    let start = u64::from_str_radix(start.trim().trim_start_matches("0x"), 16)
        .with_context(|| format!("{res}: not a hex address: {start:?}"))?;
    let pfn = (start + doff) >> 12;
    let mut tally = std::collections::BTreeMap::<String, u32>::new();
    let t = std::time::Instant::now();
    while !std::path::Path::new(until).exists() && t.elapsed().as_secs() < 300 {
        let r = match std::fs::write(CORRUPT, format!("{pfn:#x}\n")) {
            Ok(()) => "ok".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{CORRUPT} does not exist (CONFIG_HWPOISON_INJECT, debugfs)")
            }
            Err(e) => super::sys::errno_name(e.raw_os_error().unwrap_or(0)),
        };
        *tally.entry(r).or_default() += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let n: u32 = tally.values().sum();
    eprintln!(
        "hwpoison-inject {name} pfn {pfn:#x}: {n} injections: {}",
        tally
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(if n >= 2 {
        format!("injector: injected until {until}\n")
    } else {
        format!("injector: {n} injections\n")
    })
}
