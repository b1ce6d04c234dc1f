//! Profile selection, custom specs and their errors.

use famfs_proto::profile::{CUSTOM_KEYS, CUSTOM_PREFIX};
use famfs_proto::{
    CustomProfile, DaxdevSource, HeaderVariant, Profile, ProfileError, ProfileSpec, UnknownProfile,
};
use serde::de::{self, value::MapDeserializer, Deserialize, IntoDeserializer, Visitor};

#[test]
fn builtin_names_and_numbers() {
    assert_eq!(Profile::names(), &["famfs-6.14", "v10", "next"]);
    for n in Profile::names() {
        let p = Profile::by_name(n).unwrap();
        assert_eq!(p.name, *n);
        p.validate().unwrap();
    }
    let old = Profile::by_name("famfs-6.14").unwrap();
    assert_eq!(
        (
            old.flag_bit,
            old.get_fmap,
            old.get_daxdev,
            old.max_extents,
            old.max_strips
        ),
        (42, 53, 54, 2, 16)
    );
    let v10 = Profile::by_name("v10").unwrap();
    assert_eq!(
        (
            v10.flag_bit,
            v10.get_fmap,
            v10.get_daxdev,
            v10.max_extents,
            v10.max_strips
        ),
        (43, 54, 55, 32, 32)
    );
    assert_eq!(v10.alignment, 2 << 20);
    assert_eq!(v10.max_reply, 4096);
    assert_eq!(v10.header, HeaderVariant::Reserved0);
    assert_eq!(v10.get_fmap_in_size, 0);
    assert_eq!(v10.retry_limit, None);
    assert_eq!(v10.daxdev_reply_size, 280);
    assert_eq!(v10.flag_mask(), 0x800 << 32);
    assert!(v10.interleave);

    // The next revision (fixture README, ABI table).
    let next = Profile::by_name("next").unwrap();
    assert_eq!((next.flag_bit, next.get_fmap), (43, 54));
    assert_eq!(next.header, HeaderVariant::FmapSize);
    assert_eq!(next.get_fmap_in_size, 8);
    assert_eq!(next.max_reply, 4096, "a page first");
    assert_eq!(next.retry_limit, Some(16 << 20));
    assert!(!next.interleave);
    assert_eq!(next.devindex_limit, 1);
    assert_eq!(next.daxdev, DaxdevSource::Push);
    assert!(next.pushes_daxdevs() && !v10.pushes_daxdevs());
    assert_eq!((v10.daxdev_slots, next.daxdev_slots), (24, 64));
    // No cap of its own: the 16 MiB buffer bounds the count.
    assert!(!next.has_extent_cap() && v10.has_extent_cap());
    assert!(next.to_string().contains("uncapped"), "{next}");
    assert!(next.to_string().contains("devices pushed"), "{next}");
}

#[test]
fn unknown_name_lists_valid_names() {
    let e = Profile::by_name("v11").unwrap_err();
    assert_eq!(e, UnknownProfile { name: "v11".into() });
    let msg = e.to_string();
    for n in Profile::names() {
        assert!(msg.contains(n), "{msg} lacks {n}");
    }
    assert!(msg.contains("'v11'"));
    assert!(msg.contains(CUSTOM_PREFIX));
    let e = Profile::parse("V10").unwrap_err();
    assert!(matches!(e, ProfileError::Unknown(_)));
    assert!(e.to_string().contains("next"));
}

#[test]
fn custom_spec_overrides_v10() {
    let spec = "custom:flag=44,get_fmap=56,get_daxdev=57,max_extents=32,max_strips=32";
    let p = Profile::parse(spec).unwrap();
    assert_eq!((p.flag_bit, p.get_fmap, p.get_daxdev), (44, 56, 57));
    assert_eq!(p.name, spec);
    assert_eq!(p.alignment, Profile::v10().alignment);
    assert!(p.interleave);
    // The name is the spec, so it parses back to the same profile.
    assert_eq!(Profile::parse(&p.name).unwrap(), p);
    let q: Profile = spec.parse().unwrap();
    assert_eq!(q, p);
}

#[test]
fn custom_spec_with_base_and_all_kinds_of_values() {
    let p = Profile::parse(
        "custom: base=next, name=dev, alignment=0x1000, retry_limit=none, header=reserved0, interleave=yes, devindex_limit=24",
    )
    .unwrap();
    assert_eq!(p.name, "dev");
    assert_eq!(p.alignment, 4096);
    assert_eq!(p.retry_limit, None);
    assert_eq!(p.header, HeaderVariant::Reserved0);
    assert!(p.interleave);
    assert_eq!(p.devindex_limit, 24);
    assert_eq!(p.get_fmap_in_size, 8, "kept from the base");
    let q = Profile::parse("custom:base=famfs-6.14,max_strips=8").unwrap();
    assert_eq!((q.flag_bit, q.max_extents, q.max_strips), (42, 2, 8));
}

#[test]
fn custom_spec_errors() {
    let e = Profile::parse("custom:flag=44,colour=blue").unwrap_err();
    assert_eq!(
        e,
        ProfileError::BadKey {
            key: "colour".into()
        }
    );
    let msg = e.to_string();
    for k in CUSTOM_KEYS {
        assert!(msg.contains(k), "{msg} lacks {k}");
    }
    assert_eq!(
        Profile::parse("custom:get_fmap=five").unwrap_err(),
        ProfileError::BadValue {
            key: "get_fmap".into(),
            value: "five".into()
        }
    );
    assert_eq!(
        Profile::parse("custom:max_strips=0x1_0000_0000").unwrap_err(),
        ProfileError::BadValue {
            key: "max_strips".into(),
            value: "0x1_0000_0000".into()
        }
    );
    assert!(matches!(
        Profile::parse("custom:flag"),
        Err(ProfileError::BadValue { .. })
    ));
    assert!(matches!(
        Profile::parse("custom:get_fmap=55"),
        Err(ProfileError::Invalid { why, .. }) if why.contains("differ")
    ));
    assert!(matches!(
        Profile::parse("custom:flag=64"),
        Err(ProfileError::Invalid { .. })
    ));
    assert!(matches!(
        Profile::parse("custom:alignment=3"),
        Err(ProfileError::Invalid { .. })
    ));
    assert!(matches!(
        Profile::parse("custom:max_extents=0"),
        Err(ProfileError::Invalid { .. })
    ));
    assert!(matches!(
        Profile::parse("custom:base=v9"),
        Err(ProfileError::Unknown(_))
    ));
    assert!(matches!(
        Profile::parse("custom:retry_limit=65536"),
        Err(ProfileError::Invalid { why, .. }) if why.contains("fmap_size")
    ));
}

/// A tiny self-describing value so the serde path can be tested without a
/// format crate.
#[derive(Clone)]
enum V {
    S(&'static str),
    U(u64),
    B(bool),
    Null,
}

impl<'de> de::Deserializer<'de> for V {
    type Error = de::value::Error;
    fn deserialize_any<W: Visitor<'de>>(self, v: W) -> Result<W::Value, Self::Error> {
        match self {
            V::S(s) => v.visit_borrowed_str(s),
            V::U(n) => v.visit_u64(n),
            V::B(b) => v.visit_bool(b),
            V::Null => v.visit_none(),
        }
    }
    fn deserialize_option<W: Visitor<'de>>(self, v: W) -> Result<W::Value, Self::Error> {
        match self {
            V::Null => v.visit_none(),
            other => v.visit_some(other),
        }
    }
    fn deserialize_enum<W: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: W,
    ) -> Result<W::Value, Self::Error> {
        match self {
            // A unit variant written as its name, as YAML does.
            V::S(s) => v.visit_enum(de::value::BorrowedStrDeserializer::new(s)),
            other => other.deserialize_any(v).map_err(|_: Self::Error| {
                de::Error::custom(format!("{name}: expected one of {variants:?}"))
            }),
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, de::value::Error> for V {
    type Deserializer = V;
    fn into_deserializer(self) -> V {
        self
    }
}

fn from_map<T: for<'de> Deserialize<'de>>(
    pairs: Vec<(&'static str, V)>,
) -> Result<T, de::value::Error> {
    T::deserialize(MapDeserializer::new(pairs.into_iter()))
}

#[test]
fn custom_profile_from_fields() {
    let c: CustomProfile = from_map(vec![
        ("base", V::S("v10")),
        ("flag", V::U(44)),
        ("get_fmap", V::U(56)),
        ("get_daxdev", V::U(57)),
        ("interleave", V::B(false)),
        ("header", V::S("fmap_size")),
        ("retry_limit", V::U(1 << 20)),
    ])
    .unwrap();
    let p = c.resolve().unwrap();
    assert_eq!((p.flag_bit, p.get_fmap, p.get_daxdev), (44, 56, 57));
    assert_eq!(p.header, HeaderVariant::FmapSize);
    assert_eq!(p.retry_limit, Some(1 << 20));
    assert!(!p.interleave);
    assert_eq!(p.name, "custom");

    // Explicit null clears the base's retry limit; absence keeps it.
    let c: CustomProfile =
        from_map(vec![("base", V::S("next")), ("retry_limit", V::Null)]).unwrap();
    assert_eq!(c.resolve().unwrap().retry_limit, None);
    let c: CustomProfile = from_map(vec![("base", V::S("next"))]).unwrap();
    assert_eq!(c.resolve().unwrap().retry_limit, Some(16 << 20));

    assert!(
        from_map::<CustomProfile>(vec![("flags", V::U(1))]).is_err(),
        "unknown field"
    );
}

#[test]
fn profile_spec_name_or_fields() {
    let s = ProfileSpec::deserialize(V::S("famfs-6.14")).unwrap();
    assert_eq!(s.resolve().unwrap(), Profile::famfs_6_14());
    let s = ProfileSpec::deserialize(V::S("custom:get_fmap=60,get_daxdev=61")).unwrap();
    assert_eq!(s.resolve().unwrap().get_fmap, 60);
    let s: ProfileSpec = from_map(vec![("max_extents", V::U(4))]).unwrap();
    assert_eq!(s.resolve().unwrap().max_extents, 4);
    let s = ProfileSpec::Name("nope".into());
    assert!(s.resolve().unwrap_err().to_string().contains("v10"));
}

#[test]
fn full_profile_deserializes_from_fields() {
    let p: Profile = from_map(vec![
        ("name", V::S("dev")),
        ("flag_bit", V::U(45)),
        ("get_fmap", V::U(60)),
        ("get_daxdev", V::U(61)),
        ("max_extents", V::U(8)),
        ("max_strips", V::U(4)),
        ("header", V::S("reserved0")),
        ("get_fmap_in_size", V::U(0)),
        ("alignment", V::U(4096)),
        ("max_reply", V::U(4096)),
        ("retry_limit", V::Null),
        ("interleave", V::B(true)),
        ("devindex_limit", V::U(1)),
        ("daxdev_reply_size", V::U(280)),
        ("daxdev", V::S("push")),
        ("daxdev_slots", V::U(64)),
    ])
    .unwrap();
    assert_eq!(p.flag_mask(), 1 << 45);
    assert!(p.pushes_daxdevs());
    p.validate().unwrap();
}
