//! The famfs protocol fuzzer's inputs (`cargo xtask fuzz fmap`): files
//! whose fmaps and replies famfsd serves to a real kernel, made from the
//! profile and broken one field at a time ([`input`]). The loop that runs
//! them and judges what the kernel did is `commands::fuzz_fmap`; the
//! oracle is `server::oracle`.

pub mod input;
