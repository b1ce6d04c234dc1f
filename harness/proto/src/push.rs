//! What a correct kernel of a push profile (`next`) does with the daemon's
//! `FUSE_DEV_IOC_DAXDEV_OPEN` calls, and with the I/O of files whose fmaps
//! name the slots, as a pure function of the calls made.
//!
//! The rules (protocol doc, "Later revisions"; the famfs-next fixture's
//! ABI table), checked in this order for one push:
//!
//! 1. famfs not negotiated on the connection (before INIT, or the bit was
//!    not agreed): EOPNOTSUPP;
//! 2. the fd is not open: EBADF;
//! 3. not a character device: EINVAL;
//! 4. index at or above the profile's slot count: EINVAL;
//! 5. the slot already holds a device: 0;
//! 6. the slot failed before: EIO (a kernel that tries again is correct
//!    too: then the rules below apply);
//! 7. not a dax device: ENODEV; a dax device not bound to `fsdev_dax`:
//!    EOPNOTSUPP; held by another mount: EBUSY. These fail the slot.
//! 8. the device already sits in another slot of this connection: EBUSY,
//!    the slot stays empty (the revision's lost-race path; taking it as an
//!    alias is correct too);
//! 9. otherwise 0, and the slot holds the device.
//!
//! A file whose fmap names a slot that holds no device opens, and its
//! read, write and mmap give EIO; a push after that open may heal it or
//! not (both are correct: the revision keeps the error for the inode's
//! life). A failed slot gives EIO at I/O time.

use crate::errno::{EBADF, EBUSY, EINVAL, EIO, ENODEV, EOPNOTSUPP};
use crate::profile::Profile;
use serde::{Deserialize, Serialize};

/// The driver a dax device is bound to, as sysfs shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaxDriver {
    /// `fsdev_dax`: the only binding a famfs mount can hold.
    Fsdev,
    /// `device_dax`, or no driver at all.
    Other,
}

/// What the daemon hands the kernel in one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushObject {
    /// An fd number that is not open.
    BadFd,
    /// An open file that is not a character device.
    NotChardev,
    /// A character device that is not a dax device (`/dev/null`).
    NonDax,
    /// A dax device: its `dev_t`, its driver, and whether another mount
    /// already holds it.
    Dax {
        dev: u64,
        driver: DaxDriver,
        held_elsewhere: bool,
    },
}

/// One slot of a connection's device table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Empty,
    /// Holds the device with this `dev_t`.
    Valid(u64),
    /// A push failed after the device was found (cached failure).
    Failed,
}

/// The results a correct kernel may give: `0` for success or an errno.
/// The first is the one the revision documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowed(pub Vec<i32>);

impl Allowed {
    fn one(r: i32) -> Allowed {
        Allowed(vec![r])
    }

    /// Whether `result` (0 or an errno) is among them.
    pub fn allows(&self, result: i32) -> bool {
        self.0.contains(&result)
    }

    /// The documented result.
    pub fn documented(&self) -> i32 {
        self.0[0]
    }
}

/// A connection's device table as a correct kernel keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaxTable {
    slots: Vec<Slot>,
}

impl DaxTable {
    /// An empty table with the profile's slot count.
    pub fn new(profile: &Profile) -> DaxTable {
        DaxTable {
            slots: vec![Slot::Empty; profile.daxdev_slots as usize],
        }
    }

    pub fn slot(&self, index: u64) -> Option<Slot> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.slots.get(i))
            .copied()
    }

    /// One push on a connection where famfs is (`famfs_on`) or is not yet
    /// negotiated: what the ioctl may return. The table follows the
    /// documented result.
    pub fn push(&mut self, famfs_on: bool, index: u64, object: PushObject) -> Allowed {
        if !famfs_on {
            return Allowed::one(EOPNOTSUPP);
        }
        match object {
            PushObject::BadFd => return Allowed::one(EBADF),
            PushObject::NotChardev => return Allowed::one(EINVAL),
            _ => {}
        }
        let Some(slot) = self.slot(index) else {
            return Allowed::one(EINVAL);
        };
        let fresh = match object {
            PushObject::NonDax => ENODEV,
            PushObject::Dax {
                driver: DaxDriver::Other,
                ..
            } => EOPNOTSUPP,
            PushObject::Dax {
                held_elsewhere: true,
                ..
            } => EBUSY,
            PushObject::Dax { .. } => 0,
            PushObject::BadFd | PushObject::NotChardev => unreachable!("handled above"),
        };
        let elsewhere = match object {
            PushObject::Dax { dev, .. } => self.slots.contains(&Slot::Valid(dev)),
            _ => false,
        };
        match slot {
            Slot::Valid(_) => Allowed::one(0),
            Slot::Empty if fresh == 0 && elsewhere => Allowed(vec![EBUSY, 0]),
            // The revision caches the failure; trying again is correct too.
            Slot::Failed => {
                let mut a = vec![EIO];
                if !a.contains(&fresh) {
                    a.push(fresh);
                }
                Allowed(a)
            }
            Slot::Empty => {
                self.slots[index as usize] = match (fresh, object) {
                    (0, PushObject::Dax { dev, .. }) => Slot::Valid(dev),
                    _ => Slot::Failed,
                };
                Allowed::one(fresh)
            }
        }
    }

    /// Whether every slot `devices` names holds a device (what open()
    /// records for a new fmap).
    pub fn ready(&self, devices: &[u32]) -> bool {
        devices
            .iter()
            .all(|&d| matches!(self.slot(u64::from(d)), Some(Slot::Valid(_))))
    }

    /// What read, write and a fault of a file may give: `0` (the device's
    /// data) or EIO. `ready_at_open` is [`DaxTable::ready`] when the file's
    /// fmap was fetched; `self` is the table now.
    pub fn io(&self, ready_at_open: bool, devices: &[u32]) -> Allowed {
        match (ready_at_open, self.ready(devices)) {
            (true, true) => Allowed::one(0),
            // Missing at open, pushed since: the revision keeps the error.
            (false, true) => Allowed(vec![EIO, 0]),
            (_, false) => Allowed::one(EIO),
        }
    }
}
