//! Properties of the core parsers and of the text shipgate shows people, over generated
//! inputs: image references, durations, redaction and neutralisation never panic, and errors
//! say what is wrong. CI runs proptest's default number of cases; for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p shipgate-core --test properties`.

use proptest::prelude::*;
use shipgate_core::{
    EXCERPT_CHARS, HumanDuration, ImageRef, MAX_DURATION, Redactor, Secret, excerpt, one_line,
    printable, quote_outside,
};

/// Image-reference-shaped text: registry, path, tag and digest parts, each possibly broken.
fn image_like() -> impl Strategy<Value = String> {
    let part = "[a-z0-9._-]{0,12}";
    (
        proptest::option::of("[a-zA-Z0-9.-]{1,15}(:[0-9]{1,6})?/"),
        proptest::collection::vec(part, 1..4),
        proptest::option::of(":[A-Za-z0-9_.-]{0,130}"),
        proptest::option::of("@sha256:[0-9a-f]{0,70}"),
    )
        .prop_map(|(registry, path, tag, digest)| {
            format!(
                "{}{}{}{}",
                registry.unwrap_or_default(),
                path.join("/"),
                tag.unwrap_or_default(),
                digest.unwrap_or_default()
            )
        })
}

/// Duration-shaped text: numbers with units, spaces and noise.
fn duration_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            "[0-9]{0,25}",
            prop_oneof![
                Just("ns"),
                Just("ms"),
                Just("s"),
                Just("m"),
                Just("h"),
                Just("d"),
                Just("w"),
                Just("y"),
                Just("years"),
                Just("parsecs"),
                Just(""),
            ],
            "[ .-]{0,2}",
        ),
        0..4,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(n, unit, sep)| format!("{n}{unit}{sep}"))
            .collect()
    })
}

proptest! {
    #[test]
    fn image_references_parse_or_say_why(input in prop_oneof![image_like(), "\\PC{0,200}", ".{0,50}"]) {
        match input.parse::<ImageRef>() {
            Ok(image) => {
                // What parsed prints back as a reference that parses to the same thing.
                let again: ImageRef = image.to_string().parse().unwrap();
                prop_assert_eq!(again, image);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn durations_parse_within_bounds_or_say_how_to_write_them(input in prop_oneof![duration_like(), "\\PC{0,60}"]) {
        match input.parse::<HumanDuration>() {
            Ok(duration) => prop_assert!(duration.as_duration() <= MAX_DURATION),
            Err(err) => {
                let text = err.to_string();
                prop_assert!(text.contains("write it like"), "{}", text);
                prop_assert!(text.chars().count() < EXCERPT_CHARS + 300, "{}", text);
            }
        }
    }

    #[test]
    fn text_for_people_holds_no_control_character(input in "(?s).{0,300}") {
        let line = one_line(&input);
        prop_assert!(!line.chars().any(|c| c.is_control()), "{:?}", line);
        let text = printable(&input);
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{:?}", text);
        let quoted = quote_outside(&input);
        prop_assert!(quoted.chars().count() <= EXCERPT_CHARS * 10 + 40);
        prop_assert!(excerpt(&input, 10).chars().count() <= 10 + 30);
    }

    #[test]
    fn a_registered_secret_never_survives_redaction(
        secret in "[A-Za-z0-9_+/=-]{4,40}",
        before in "\\PC{0,40}",
        after in "\\PC{0,40}",
    ) {
        let redactor = Redactor::default();
        redactor.add(&Secret::new(secret.clone()));
        for shape in [
            format!("{before}{secret}{after}"),
            format!("{before}https://user:{secret}@host/{after}"),
            format!("{before}Authorization: Bearer {secret}{after}"),
        ] {
            let shown = redactor.redact(&shape);
            prop_assert!(!shown.contains(&secret), "{:?} -> {:?}", shape, shown);
        }
    }

    #[test]
    fn a_short_secret_standing_alone_is_masked(
        secret in "[A-Za-z0-9]{1,3}",
        separator in "[ :=,;\"']",
    ) {
        let redactor = Redactor::default();
        redactor.add(&Secret::new(secret.clone()));
        let line = format!("token{separator}{secret}{separator}");
        prop_assert_eq!(redactor.redact(&line), format!("token{separator}[redacted]{separator}"));
    }
}
