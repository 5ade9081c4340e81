use super::*;

fn check(source: &str, expected: Result<&str, (u32, u32, &str)>) {
    let result = parse(source);
    match (result, expected) {
        (Ok(node), Ok(shape)) => assert_eq!(summary(&node), shape),
        (Err(errors), Err((line, column, fragment))) => {
            let error = &errors[0];
            assert_eq!(
                (error.at.line, error.at.column),
                (line, column),
                "{}",
                error.message
            );
            assert!(
                error.message.contains(fragment),
                "{:?} lacks {fragment:?}",
                error.message
            );
        }
        (result, expected) => panic!("parse({source:?}) = {result:?}, expected {expected:?}"),
    }
}

fn summary(node: &Node) -> String {
    let at = format!("@{}:{}", node.at.line, node.at.column);
    match &node.value {
        Value::Mapping(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}@{}:{}={}", k.text, k.at.line, k.at.column, summary(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Sequence(items) => {
            format!(
                "[{}]{at}",
                items.iter().map(summary).collect::<Vec<_>>().join(",")
            )
        }
        Value::String(text) => format!("{text:?}{at}"),
        Value::Integer(number) => format!("{number}{at}"),
        Value::Float(number) => format!("{number}f{at}"),
        Value::Bool(value) => format!("{value}{at}"),
        Value::Null => format!("null{at}"),
    }
}

#[test]
fn located_values() {
    check(
        "a: 1\nb: [x, 2]\n",
        Ok(r#"{a@1:1=1@1:4,b@2:1=["x"@2:5,2@2:8]@2:4}"#),
    );
    check("", Ok("null@1:1"));
    check(
        "a: none\nb: ~\n",
        Ok(r#"{a@1:1="none"@1:4,b@2:1=null@2:4}"#),
    );
}

#[test]
fn rejects_duplicates_and_bad_syntax() {
    check("a: 1\na: 2\n", Err((2, 1, "duplicate mapping key")));
    check("a: [1, 2\n", Err((1, 4, "unclosed bracket")));
}

#[test]
fn rejects_hostile_documents_quickly() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    for (name, previous) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
    ] {
        let refs = vec![format!("*{previous}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let error = &parse(&bomb).unwrap_err()[0];
    assert!(error.message.contains("too large"), "{}", error.message);
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert!(parse(&deep).is_err(), "flow nesting");
    let deep_map = format!("{}{}", "{a: ".repeat(20_000), "}".repeat(20_000));
    assert!(parse(&deep_map).is_err(), "mapping nesting");
    assert!(
        parse(&"x".repeat(BYTES_MAX + 1)).unwrap_err()[0]
            .message
            .contains("limited")
    );
}

#[test]
fn refuses_tags_that_change_a_value() {
    check("a: !!binary aGVsbG8=\n", Err((1, 13, "tag `!!binary`")));
    check("a: !foo x\n", Err((1, 9, "tag `!foo`")));
    check("a: !!set {x: null}\n", Err((1, 10, "tag `!!set`")));
    check(
        "a: !!str 10\nb: !!int 10\nc: !!map {x: 1}\n",
        Ok(r#"{a@1:1="10"@1:10,b@2:1=10@2:10,c@3:1={x@3:11=1@3:14}}"#),
    );
}

#[test]
fn refuses_number_spellings_that_are_slips() {
    for (text, read_as) in [
        ("+10", "10"),
        ("010", "10"),
        ("0x19", "25"),
        ("0o17", "15"),
        ("1_000", "1000"),
    ] {
        let errors = parse(&format!("a: {text}\n")).unwrap_err();
        assert_eq!(errors[0].at, Position { line: 1, column: 4 }, "{text}");
        assert!(
            errors[0].message.contains(read_as),
            "{text}: {}",
            errors[0].message
        );
        let help = errors[0].help.as_deref().unwrap_or_default();
        assert!(
            help.contains(&format!("`{read_as}`")) && help.contains(&format!("\"{text}\"")),
            "{help}"
        );
    }
    for text in ["0", "-3", "10.0", "1e3", "18446744073709551616", "\"010\""] {
        assert!(parse(&format!("a: {text}\n")).is_ok(), "{text}");
    }
    let node = parse("a: 10.0\n").unwrap();
    let Value::Mapping(entries) = &node.value else {
        panic!()
    };
    assert_eq!(entries[0].1.describe(), "`10.0`");
}
