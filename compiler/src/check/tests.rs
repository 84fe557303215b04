//! The checks of the whole pipeline on small stacks.

use super::is_env_name;

fn errors(text: &str) -> Vec<String> {
    let options = crate::options::Options {
        source_name: "t.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "..".into(),
        source_from_out: "../t.stack".into(),
    };
    let diags =
        crate::pipeline::analyze(text.to_string(), &options, crate::pipeline::Disposal::Free)
            .diagnostics;
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn an_external_service_may_refer_to_a_service_declared_after_it() {
    let external =
        "external legacy {\n  url = \"postgres://${db.user}@${db.host}/${db.database}\"\n}\n";
    let db = "service db: postgres {\n  database = \"app\"\n  user = \"app\"\n  password = secret.pw\n}\n";
    let rest = "secret pw\nservice api {\n  image = \"api:1\"\n  env {\n    LEGACY_URL = legacy.url\n  }\n}\ntopology single {\n  host main { run = [api, db] }\n}\n";
    for text in [
        format!("stack t\n{external}{db}{rest}"),
        format!("stack t\n{db}{external}{rest}"),
    ] {
        assert_eq!(errors(&text), Vec::<String>::new(), "{text}");
    }
    // What is not an attribute of db's kind is reported wherever db is.
    let wrong = external.replace("db.database", "db.dbname");
    for text in [
        format!("stack t\n{wrong}{db}{rest}"),
        format!("stack t\n{db}{wrong}{rest}"),
    ] {
        assert_eq!(
            errors(&text),
            vec!["service `db` has no attribute `dbname`".to_string()],
            "{text}"
        );
    }
}

#[test]
fn env_names_are_a_letter_or_underscore_then_letters_digits_underscores() {
    for good in ["A", "_", "_OK_1", "log_level", "SVC_9999_URL"] {
        assert!(is_env_name(good), "{good}");
    }
    for bad in ["", "1A", "log-level", "A B", "É", "AÉ", "A.B", "$A"] {
        assert!(!is_env_name(bad), "{bad}");
    }
}
