//! Linux x86-64 errno numbers used by the protocol model, so the crate needs
//! no libc. Values are positive; FUSE replies carry them negated.

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const EBADF: i32 = 9;
pub const EAGAIN: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const ENODEV: i32 = 19;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const ENOTTY: i32 = 25;
pub const EFBIG: i32 = 27;
pub const ENOSPC: i32 = 28;
pub const EROFS: i32 = 30;
pub const ERANGE: i32 = 34;
pub const ENOSYS: i32 = 38;
pub const ENOTEMPTY: i32 = 39;
pub const ENODATA: i32 = 61;
pub const EOPNOTSUPP: i32 = 95;
/// Same number as `EOPNOTSUPP` on Linux.
pub const ENOTSUP: i32 = EOPNOTSUPP;
pub const ECONNABORTED: i32 = 103;
pub const ENOTCONN: i32 = 107;
pub const ETIMEDOUT: i32 = 110;
pub const EHWPOISON: i32 = 133;

/// Symbolic name of an errno (sign ignored), if it is one of the above.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno.unsigned_abs() as i32 {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENOTTY => "ENOTTY",
        EFBIG => "EFBIG",
        ENOSPC => "ENOSPC",
        EROFS => "EROFS",
        ERANGE => "ERANGE",
        ENOSYS => "ENOSYS",
        ENOTEMPTY => "ENOTEMPTY",
        ENODATA => "ENODATA",
        EOPNOTSUPP => "EOPNOTSUPP",
        ECONNABORTED => "ECONNABORTED",
        ENOTCONN => "ENOTCONN",
        ETIMEDOUT => "ETIMEDOUT",
        EHWPOISON => "EHWPOISON",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers() {
        assert_eq!(
            (EINVAL, ERANGE, EFBIG, EIO, EOPNOTSUPP),
            (22, 34, 27, 5, 95)
        );
        assert_eq!(errno_name(-ERANGE), Some("ERANGE"));
        assert_eq!(errno_name(EFBIG), Some("EFBIG"));
        assert_eq!(errno_name(1000), None);
    }
}
