//! References: every `NAME.ATTR`, `secret.NAME` and `self.ATTR` names what
//! exists.

use super::*;

/// Checks the shape of every reference in an expression. `owner` is the service the
/// expression belongs to (for `self`).
pub(super) fn check_expr(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    owner: Option<&str>,
    expr: &Expr,
    diags: &mut Diagnostics,
) {
    for r in expr.references() {
        if let Some(d) = check_reference(stack, bases, owner, r) {
            diags.push(d);
        }
    }
}

/// The diagnostic of a reference that names nothing (or more than it
/// should), if any.
fn check_reference(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    owner: Option<&str>,
    r: &Reference,
) -> Option<Diagnostic> {
    let (first, attr) = match &r.target {
        RefTarget::Secret(name) => return check_secret(stack, name.as_ref(), r),
        RefTarget::Service { service, attr } => (service, attr),
    };
    let service = match referenced_service(stack, owner, first, attr.is_none()) {
        Ok(service) => service,
        Err(d) => return Some(*d),
    };
    let Some(attr) = attr else {
        return Some(
            Diagnostic::error(
                Code::UnknownAttribute,
                r.span,
                format!(
                    "`{}` is a service; refer to one of its attributes",
                    first.name
                ),
            )
            .label("attribute missing")
            .help(format!(
                "for example `{}.url` or `{}.address`",
                first.name, first.name
            )),
        );
    };
    let params: Vec<&str> = bases
        .get(&service)
        .map(|b| b.parameters.params.keys().map(Name::as_str).collect())
        .unwrap_or_default();
    if let Attribute::Ports(port) = &attr.kind {
        return check_port(bases, &service, first, port.as_ref(), r);
    }
    if attr.kind == Attribute::Param && !params.contains(&attr.name.name.as_str()) {
        let mut known: Vec<&str> = schema::ATTRIBUTES.iter().map(|a| a.name).collect();
        known.extend(params.iter().copied());
        let d = Diagnostic::error(
            Code::UnknownAttribute,
            attr.name.span,
            format!("service `{service}` has no attribute `{}`", attr.name.name),
        )
        .label("unknown attribute");
        return Some(d.suggesting(&attr.name.name, known.iter().copied(), || {
            format!("the attributes are: {}", known.join(", "))
        }));
    }
    too_long(r)
}

/// `secret.NAME`: a declared secret.
fn check_secret(stack: &Stack, name: Option<&Ident>, r: &Reference) -> Option<Diagnostic> {
    let Some(name) = name else {
        return Some(
            Diagnostic::error(Code::UnknownName, r.span, "`secret` needs a secret name")
                .label("write `secret.NAME`")
                .help("write `secret.NAME`, with NAME declared by `secret NAME`"),
        );
    };
    if !stack.secrets.contains_key(&name.name) {
        let d = Diagnostic::error(
            Code::UndeclaredSecret,
            name.span,
            format!("secret `{}` is not declared", name.name),
        )
        .label("not declared");
        return Some(
            match suggest(&name.name, stack.secrets.keys().map(Name::as_str)) {
                // The editor offers to declare it first (`lsp::fixes`): a
                // new secret is the likelier intent than a similar name.
                Some(s) => d
                    .help(format!(
                        "did you mean `{s}`? Or declare it: `secret {}`",
                        name.name
                    ))
                    .fix_replace(format!("Replace with `{s}`"), name.span, s),
                None => d.help(format!("declare it: `secret {}`", name.name)),
            },
        );
    }
    too_long(r)
}

/// The service a reference starts with (`self`: its owner's).
fn referenced_service(
    stack: &Stack,
    owner: Option<&str>,
    first: &Ident,
    alone: bool,
) -> Result<Name, Box<Diagnostic>> {
    if first.name == "self" {
        return owner.map(Name::new).ok_or_else(|| {
            Box::new(Diagnostic::error(Code::UnknownName, first.span, "`self` is not a service here")
                .label("no service owns this value")
                .help("`self` refers to the service a value belongs to; outside a service, name the service"))
        });
    }
    if !stack.services.contains_key(&first.name) {
        if alone {
            // A single name: perhaps a choice written in the wrong place.
            return Err(Box::new(unknown_service(stack, first).help(format!(
                "a reference is `SERVICE.ATTRIBUTE`, like `{}.url`; a literal string is written in quotes",
                first.name
            ))));
        }
        return Err(Box::new(unknown_service(stack, first)));
    }
    Ok(first.name.clone())
}

/// `SERVICE.ports.NAME`: a port the service declares.
fn check_port(
    bases: &IndexMap<Name, DefRef<'_>>,
    service: &Name,
    first: &Ident,
    port: Option<&Ident>,
    r: &Reference,
) -> Option<Diagnostic> {
    let Some(port) = port else {
        return Some(
            Diagnostic::error(Code::UnknownAttribute, r.span, "`ports` needs a port name")
                .label(format!("write `{}.ports.NAME`", first.name))
                .help(format!("for example `{}.ports.http`", first.name)),
        );
    };
    if let Some(base) = bases.get(service) {
        if !base.ports.contains_key(&port.name) {
            let d = Diagnostic::error(
                Code::UnknownAttribute,
                port.span,
                format!("service `{service}` has no port `{}`", port.name),
            )
            .label("no such port");
            let names: Vec<&str> = base.ports.keys().map(Name::as_str).collect();
            let ports = || names.iter().copied();
            return Some(
                d.suggesting(&port.name, ports(), || match names.is_empty() {
                    true => format!("`{service}` declares no port"),
                    false => listing(&format!("ports of `{service}`"), ports()),
                }),
            );
        }
    }
    too_long(r)
}

/// Names past what the reference's shape takes.
fn too_long(r: &Reference) -> Option<Diagnostic> {
    let extra = r.extra.first()?;
    let last = r.extra.last().map_or(extra.span, |l| l.span);
    Some(
        Diagnostic::error(
            Code::UnknownAttribute,
            extra.span.to(last),
            format!("`{}` goes too deep", r.text()),
        )
        .label("nothing to select here")
        .help("a reference is `SERVICE.ATTRIBUTE`, `SERVICE.ports.NAME` or `secret.NAME`"),
    )
}
