use proptest::prelude::*;

use super::*;

fn parse(value: &str) -> Result<Priority, InvalidPriority> {
    Priority::parse(value.as_bytes())
}

fn p(urgency: u8, incremental: bool) -> Priority {
    Priority { urgency, incremental }
}

#[test]
fn defaults() {
    assert_eq!(Priority::default(), p(3, false));
    assert_eq!(Priority::DEFAULT, Priority::default());
    assert_eq!(parse(""), Ok(Priority::DEFAULT));
    assert_eq!(parse("   "), Ok(Priority::DEFAULT));
    assert_eq!(Priority::from_fields([]), Ok(Priority::DEFAULT));
}

#[test]
fn urgency_and_incremental() {
    assert_eq!(parse("u=0"), Ok(p(0, false)));
    assert_eq!(parse("u=7, i"), Ok(p(7, true)));
    assert_eq!(parse("i"), Ok(p(3, true)));
    assert_eq!(parse("i=?1"), Ok(p(3, true)));
    assert_eq!(parse("i=?0"), Ok(p(3, false)));
    assert_eq!(parse("i, u=5"), Ok(p(5, true)));
    for u in 0..=7 {
        assert_eq!(parse(&format!("u={u}")), Ok(p(u, false)));
    }
    // Leading zeros and negative zero are still integers.
    assert_eq!(parse("u=007"), Ok(p(7, false)));
    assert_eq!(parse("u=-0"), Ok(p(0, false)));
}

#[test]
fn out_of_range_or_mistyped_parameters_are_ignored() {
    for value in [
        "u=8",
        "u=-1",
        "u=1.5",
        "u=1.0",
        "u=\"3\"",
        "u=\"1\"",
        "u=a",
        "u=?1",
        "u",
        "u=:AQ==:",
        "u=(1)",
        "u=999999999999999",
        "u=-999999999999999",
    ] {
        assert_eq!(parse(value), Ok(Priority::DEFAULT), "{value}");
    }
    for value in ["i=1", "i=0", "i=\"?1\"", "i=?1x", "i=t", "i=(?1)", "i=1.0"] {
        let expected = if value == "i=?1x" { Err(InvalidPriority) } else { Ok(Priority::DEFAULT) };
        assert_eq!(parse(value), expected, "{value}");
    }
    // The other parameter is still read.
    assert_eq!(parse("u=9, i"), Ok(p(3, true)));
    assert_eq!(parse("u=1, i=2"), Ok(p(1, false)));
}

#[test]
fn unknown_members_are_parsed_and_ignored() {
    assert_eq!(parse("foo=(1 2);a, u=2"), Ok(p(2, false)));
    assert_eq!(
        parse("a=1, b=2.5, c=\"x\\\"y\", d=tok/en:1, e=:AAEC:, f=?0, g=(), u=6"),
        Ok(p(6, false))
    );
    assert_eq!(parse("x-y_z.w*=1, *a, u=4;q;r=\"s\""), Ok(p(4, false)));
    assert_eq!(parse("ux=1, iu=?1, U1=0"), Err(InvalidPriority), "keys are lowercase");
    assert_eq!(parse("ux=1, iu=?1"), Ok(Priority::DEFAULT));
    assert_eq!(
        parse("l=(a \"b\" 1 2.0 ?1 :AA==: (x));p=1, i"),
        Err(InvalidPriority),
        "no nested lists"
    );
    assert_eq!(parse("l=(a \"b\" 1 2.0 ?1 :AA==:);p=1, i"), Ok(p(3, true)));
}

#[test]
fn the_last_of_duplicate_keys_wins() {
    assert_eq!(parse("u=1, u=2"), Ok(p(2, false)));
    assert_eq!(parse("i, i=?0"), Ok(p(3, false)));
    assert_eq!(parse("i=?0, i"), Ok(p(3, true)));
    // The last one counts even when it is ignored: it replaced the first.
    assert_eq!(parse("u=1, u=9"), Ok(Priority::DEFAULT));
    assert_eq!(parse("u=1, u=(1)"), Ok(Priority::DEFAULT));
}

#[test]
fn parameters_on_members_do_not_matter() {
    assert_eq!(parse("u=2;x=1"), Ok(p(2, false)));
    assert_eq!(parse("u=2;x;y=?0;z=\"s\";*k=tok, i;a=1"), Ok(p(2, true)));
    assert_eq!(parse("i;u=1"), Ok(p(3, true)), "a parameter named u is no member");
    assert_eq!(parse("u=2; x=1"), Ok(p(2, false)), "spaces after ';'");
    assert_eq!(parse("u=2 ;x=1"), Err(InvalidPriority), "but not before");
    assert_eq!(parse("u=2;x=(1)"), Err(InvalidPriority), "parameter values are bare items");
    assert_eq!(parse("u=2;X=1"), Err(InvalidPriority));
    assert_eq!(parse("u=2;"), Err(InvalidPriority));
}

#[test]
fn whitespace() {
    for value in ["u=1,i", "u=1, i", "u=1 ,  i", "u=1\t,\ti", "  u=1, i", "u=1, i  ", "u=1, i\t"] {
        assert_eq!(parse(value), Ok(p(1, true)), "{value:?}");
    }
    // Only spaces may lead at the top level; no whitespace around `=`.
    for value in ["\tu=1", "u =1", "u= 1", "u=1 i", "\ni", "i\n"] {
        assert_eq!(parse(value), Err(InvalidPriority), "{value:?}");
    }
    // Inner lists take spaces only, any number, inside the parentheses.
    assert_eq!(parse("a=( 1  2 ), u=0"), Ok(p(0, false)));
    assert_eq!(parse("a=(1\t2), u=0"), Err(InvalidPriority));
    assert_eq!(parse("a=(1,2)"), Err(InvalidPriority));
}

#[test]
fn garbage_is_refused() {
    for value in [
        ",",
        "u=1,",
        "u=1,,i",
        ",u=1",
        "=1",
        "u=",
        "u=1=2",
        "1=1",
        "U=1",
        "u=1;",
        "u=1 2",
        "u=--1",
        "u=-",
        "u=1.",
        "u=1.2345",
        "u=1234567890123.1",
        "u=1234567890123456",
        "u=1..2",
        "u=\"abc",
        "u=\"a\\b\"",
        "u=\"\u{e9}\"",
        "u=:abc",
        "u=:a=b:",
        "u=:A:",
        "u=:AAAA=:",
        "u=:A===:",
        "u=:AA!A:",
        "u=?",
        "u=?2",
        "u=(1",
        "u=(1 2",
        "u=@1659578233",
        "u=%\"x\"",
        "u=1, \u{e9}",
        "\u{e9}",
        "i, ?",
    ] {
        assert_eq!(parse(value), Err(InvalidPriority), "{value:?}");
    }
    assert_eq!(Priority::parse(b"u=1, i\xff"), Err(InvalidPriority));
    assert_eq!(Priority::parse(b"u=1\0"), Err(InvalidPriority));
}

#[test]
fn numbers_at_their_limits() {
    // 15 integer digits, and 12.3 decimal digits, are the most allowed.
    assert_eq!(parse("a=999999999999999, u=1"), Ok(p(1, false)));
    assert_eq!(parse("a=-999999999999999, u=1"), Ok(p(1, false)));
    assert_eq!(parse("a=999999999999.999, u=1"), Ok(p(1, false)));
    assert_eq!(parse("a=1000000000000000"), Err(InvalidPriority));
    assert_eq!(parse("a=9999999999999.9"), Err(InvalidPriority));
    assert_eq!(parse("a=1.0000"), Err(InvalidPriority));
    // Byte sequences: padded, unpadded, empty.
    for value in ["a=::", "a=:AA==:", "a=:AA:", "a=:AAA=:", "a=:AAA:", "a=:+/09:"] {
        assert_eq!(parse(value), Ok(Priority::DEFAULT), "{value}");
    }
}

#[test]
fn several_field_lines_are_one_value() {
    let lines: [&[u8]; 2] = [b"u=1", b"i"];
    assert_eq!(Priority::from_fields(lines), Ok(p(1, true)));
    let lines: [&[u8]; 2] = [b"u=1", b"u=6"];
    assert_eq!(Priority::from_fields(lines), Ok(p(6, false)));
    let lines: [&[u8]; 1] = [b"u=2, i"];
    assert_eq!(Priority::from_fields(lines), Ok(p(2, true)));
    // One bad line spoils the whole value.
    let lines: [&[u8]; 2] = [b"u=1", b"u=?"];
    assert_eq!(Priority::from_fields(lines), Err(InvalidPriority));
    // A member may not be split across lines (RFC 8941 §4.2).
    let lines: [&[u8]; 2] = [b"a=(1", b"2), u=1"];
    assert_eq!(Priority::from_fields(lines), Err(InvalidPriority));
}

#[test]
fn field_values_omit_defaults() {
    assert_eq!(Priority::DEFAULT.to_field_value(), "");
    assert_eq!(p(1, false).to_field_value(), "u=1");
    assert_eq!(p(5, true).to_field_value(), "u=5, i");
    assert_eq!(p(3, true).to_field_value(), "i");
    assert_eq!(p(0, false).to_field_value(), "u=0");
}

#[test]
fn every_priority_round_trips() {
    for urgency in 0..=Priority::MAX_URGENCY {
        for incremental in [false, true] {
            let priority = p(urgency, incremental);
            let value = priority.to_field_value();
            assert_eq!(parse(&value), Ok(priority), "{value:?}");
        }
    }
}

#[test]
fn transport_priority_puts_urgent_first() {
    let order: Vec<i32> = (0..=7).map(|u| p(u, false).transport_priority()).collect();
    assert_eq!(order, [7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(p(0, true).transport_priority(), 7);
    assert_eq!(Priority::DEFAULT.transport_priority(), 4);
}

#[test]
fn long_inputs_are_handled() {
    // 64 KiB of members: one pass, no recursion beyond one inner list.
    let mut value = "a=(1 2 3);x=\"y\", ".repeat(4000);
    value.push_str("u=5");
    assert!(value.len() > 64 * 1024);
    assert_eq!(parse(&value), Ok(p(5, false)));
    let spaces = format!("{}u=1{}", " ".repeat(1 << 16), " ".repeat(1 << 16));
    assert_eq!(parse(&spaces), Ok(p(1, false)));
    let unclosed = format!("a=\"{}", "x".repeat(1 << 16));
    assert_eq!(parse(&unclosed), Err(InvalidPriority));
    assert_eq!(
        InvalidPriority.to_string(),
        "priority field value is not a structured-field dictionary"
    );
}

/// Bytes the grammar cares about, and some it does not.
fn sf_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => prop::sample::select(b"ui=,;() \t\"\\:?*-.01789aAzZ/+@%".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..64)
}

proptest! {
    #[test]
    fn parse_never_panics(value in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Priority::parse(&value);
    }

    #[test]
    fn parse_never_panics_on_near_grammar(value in sf_bytes()) {
        if let Ok(priority) = Priority::parse(&value) {
            prop_assert!(priority.urgency <= Priority::MAX_URGENCY);
        }
    }

    #[test]
    fn appending_a_member_overrides(prefix in sf_bytes(), urgency in 0u8..=7) {
        // Whatever a valid value said, a later u member has the last word.
        if Priority::parse(&prefix).is_ok() && !prefix.trim_ascii().is_empty() {
            let mut value = prefix.clone();
            value.extend_from_slice(format!(", u={urgency}").as_bytes());
            if let Ok(priority) = Priority::parse(&value) {
                prop_assert_eq!(priority.urgency, urgency);
            }
        }
    }
}
