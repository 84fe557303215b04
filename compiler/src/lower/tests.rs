//! The lowering reads every field the schema lists.

use crate::diag::Code;
use crate::pipeline::{analyze, Disposal};
use crate::schema;

fn unknown_fields(text: &str) -> Vec<String> {
    let options = crate::options::Options {
        source_name: "t.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "..".into(),
        source_from_out: "../t.stack".into(),
    };
    analyze(text, &options, Disposal::Free)
        .diagnostics
        .into_iter()
        .filter(|d| d.code == Code::UnknownField)
        .map(|d| d.message)
        .collect()
}

/// Each field of a service and of a kind, written `FIELD = x`, is taken by
/// one arm of the lowering (a wrong value is another error): a field added
/// to the schema without its arm is reported as unknown, and fails here.
#[test]
fn every_field_of_the_schema_is_lowered() {
    for field in schema::SERVICE.names() {
        let text = format!("service s {{\n  {field} = x\n}}\n");
        assert_eq!(
            unknown_fields(&text),
            Vec::<String>::new(),
            "service field {field}"
        );
    }
    for field in schema::SERVICE.names().chain(schema::KIND_ONLY.names()) {
        let text = format!("kind k {{\n  {field} = x\n}}\n");
        assert_eq!(
            unknown_fields(&text),
            Vec::<String>::new(),
            "kind field {field}"
        );
    }
    // And the test sees an unknown field.
    assert_eq!(unknown_fields("service s {\n  imagee = x\n}\n").len(), 1);
}

/// Every attribute the schema documents is one the lowering knows (`ports`
/// takes a port name after it); any other name is a parameter.
#[test]
fn every_attribute_of_the_schema_is_known() {
    use crate::model::Attribute;
    for attr in schema::ATTRIBUTES.iter().filter(|a| a.name != "ports") {
        assert_ne!(
            super::values::attribute(attr.name),
            Attribute::Param,
            "{}",
            attr.name
        );
    }
    assert_eq!(super::values::attribute("user"), Attribute::Param);
}

/// Every value completion offers for a choice field is one the lowering
/// takes: written where the field is, none gives a diagnostic about it.
#[test]
fn every_choice_completion_offers_is_accepted() {
    let options = crate::options::Options {
        source_name: "t.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "..".into(),
        source_from_out: "../t.stack".into(),
    };
    for (field, values) in schema::CHOICES {
        for value in *values {
            let text = match *field {
                "strategy" => format!("service s {{\n  image = \"s:1\"\n  port http = 80\n  route \"/\" {{ strategy = {value} }}\n}}\n"),
                "protocol" => format!("service s {{\n  image = \"s:1\"\n  port p {{ container = 80  protocol = {value} }}\n}}\n"),
                "platform" => format!("topology t {{\n  platform = {value}\n}}\n"),
                "scrape" => format!("topology t {{\n  platform = kubernetes\n  scrape = {value}\n}}\n"),
                _ => format!("service s {{\n  image = \"s:1\"\n  {field} = {value}\n}}\n"),
            };
            let wrong: Vec<String> = analyze(text.as_str(), &options, Disposal::Free)
                .diagnostics
                .into_iter()
                .filter(|d| {
                    matches!(
                        d.code,
                        Code::InvalidValue | Code::WrongType | Code::UnknownField
                    )
                })
                .map(|d| d.message)
                .collect();
            assert!(wrong.is_empty(), "{field} = {value}: {wrong:?}");
        }
    }
}

/// Each word the synonyms suggest is a field of some block, or a kind of the
/// stdlib: a newcomer is never pointed at a word stackc does not have.
#[test]
fn every_synonym_suggests_a_real_word() {
    let kinds = ["postgres", "redis"];
    for (theirs, ours) in crate::diag::SYNONYMS {
        let field = schema::BLOCKS.iter().any(|b| b.has(ours));
        assert!(
            field || kinds.contains(ours),
            "`{theirs}` suggests `{ours}`, no field"
        );
    }
}
