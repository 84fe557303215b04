//! The stages of a build, one benchmark each, on the peer benchmark's workload
//! (bench/gen.py writes the same file): parse, lower, check, plan, each target of
//! the workload, and the write of the files (into an empty directory, and over
//! an identical output). A regression shows in the stage that has it.
//!
//! `cargo bench -p stackc --bench stages` (N = 1000; `STACKC_BENCH_N` to change).

use std::hint::black_box;
use std::path::Path;

/// The allocator of the `stackc` binary, so that the figures are its figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use stackc::diag::{Diagnostics, FileId, SourceMap};
use stackc::model::Platform;
use stackc::{check, emit, lower, pipeline, plan, stdlib, syntax, targets, Disposal, Options};

/// The workload of bench/gen.py: N services with five env vars (two of them
/// references), an HTTP health check and a route each; a single-host topology
/// with an nginx proxy and a Kubernetes topology.
fn workload(n: usize) -> String {
    let mut s = format!("# The peer benchmark's workload, N = {n}.\nstack bench\n\n");
    for i in 0..n {
        s += &format!(
            "service svc-{i} {{\n  image = \"registry.example.com/svc-{i}:1.{}.0\"\n  port http = {}\n  replicas = {}\n  env {{\n    LOG_LEVEL = \"info\"\n    APP_ENV = \"production\"\n    OTEL_EXPORTER = \"otlp\"\n",
            i % 7,
            8000 + i % 1000,
            1 + i % 3
        );
        for j in [i.checked_sub(1), i.checked_sub(7)].into_iter().flatten() {
            s += &format!("    SVC_{j}_URL = svc-{j}.url\n");
        }
        s += &format!("  }}\n  health {{\n    http = \"/health\"\n    interval = 10s\n    timeout = 3s\n    retries = 3\n  }}\n  route \"/svc-{i}/\" {{\n    strategy = least_conn\n    strip_prefix = true\n  }}\n}}\n");
    }
    let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
    let names = names.join(", ");
    s += &format!("topology single {{\n  host main {{\n    address = \"10.0.0.1\"\n    run = [{names}]\n  }}\n  proxy edge: nginx {{ host = main }}\n}}\n\ntopology kubernetes {{\n  platform = kubernetes\n  run = [{names}]\n}}\n");
    s
}

fn options() -> Options {
    Options {
        source_name: "bench.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "../../..".into(),
        source_from_out: "../bench.stack".into(),
    }
}

/// The files one target makes, collected in memory.
fn files_of(
    target: impl FnOnce(&mut targets::Files<'_>, &mut Diagnostics),
) -> Vec<targets::Artifact> {
    let mut out = Vec::new();
    target(
        &mut targets::Files::new(&mut out),
        &mut Diagnostics::default(),
    );
    out
}

fn stages(c: &mut Criterion) {
    let n: usize = std::env::var("STACKC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let text = workload(n);
    // The same bytes as bench/gen.py's, when it has written this N.
    let generated =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../bench/data/services-{n}.stack"));
    if let Ok(theirs) = std::fs::read_to_string(&generated) {
        assert!(
            theirs == text,
            "{} differs from this benchmark's workload",
            generated.display()
        );
    }
    let options = options();
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut units = Vec::new();
    for (name, std_text) in stdlib::FILES {
        let id = sources.add(*name, *std_text);
        units.push(parse_and_lower(id, std_text, true));
    }
    let user = sources.add("bench.stack", text.as_str());
    units.push(parse_and_lower(user, &text, false));
    let stack = lower::lower(&mut units, "bench", &mut diags);
    let checked = check::check(&stack, &mut diags);
    let plan = plan::plan(&stack, &checked, &mut diags);
    assert!(!diags.has_errors(), "the workload has errors");
    let single = plan
        .topologies
        .iter()
        .find(|t| t.platform == Platform::Compose)
        .expect("a compose topology");
    let cluster = plan
        .topologies
        .iter()
        .find(|t| t.platform == Platform::Kubernetes)
        .expect("a Kubernetes topology");
    let artifacts = targets::generate(&plan, &options, &mut diags);

    let mut g = c.benchmark_group(format!("N={n}"));
    g.sample_size(20);
    g.bench_function("parse", |b| {
        b.iter(|| syntax::parse(user, black_box(&text), &mut Diagnostics::default()))
    });
    // What every analysis does: each service lowered as soon as it is
    // parsed (its subtree freed), then the file lowered into a stack.
    g.bench_function("parse and lower", |b| {
        b.iter(|| {
            let mut units = [parse_and_lower(user, black_box(&text), false)];
            lower::lower(&mut units, "bench", &mut Diagnostics::default())
        })
    });
    g.bench_function("check", |b| {
        b.iter(|| check::check(black_box(&stack), &mut Diagnostics::default()))
    });
    g.bench_function("plan", |b| {
        b.iter(|| plan::plan(black_box(&stack), &checked, &mut Diagnostics::default()))
    });
    g.bench_function("target compose", |b| {
        b.iter(|| files_of(|files, d| targets::compose::generate(single, &options, files, d)))
    });
    g.bench_function("target env", |b| {
        b.iter(|| files_of(|files, d| targets::env::generate(&plan, single, &options, files, d)))
    });
    g.bench_function("target nginx", |b| {
        b.iter(|| files_of(|files, d| targets::nginx::generate(single, &options, files, d)))
    });
    g.bench_function("target kubernetes", |b| {
        b.iter(|| {
            files_of(|files, d| targets::kubernetes::generate(&plan, cluster, &options, files, d))
        })
    });
    g.bench_function("targets (all topologies)", |b| {
        b.iter(|| targets::generate(black_box(&plan), &options, &mut Diagnostics::default()))
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scope: Vec<String> = plan.topologies.iter().map(|t| t.name.to_string()).collect();
    let write = |out: &Path| {
        emit::write(out, &emit::Owner::of(&options), &artifacts, &scope).expect("written")
    };
    g.bench_function("write (empty directory)", |b| {
        b.iter_batched(
            || {
                let out = dir.path().join("fresh");
                let _ = std::fs::remove_dir_all(&out);
                out
            },
            |out| write(&out),
            BatchSize::PerIteration,
        )
    });
    let same = dir.path().join("same");
    write(&same);
    g.bench_function("write (unchanged output)", |b| b.iter(|| write(&same)));
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);

/// One file parsed and its services lowered, as `stackc check` and `build` do.
fn parse_and_lower(id: FileId, text: &str, stdlib: bool) -> lower::Unit {
    pipeline::parse(
        id,
        text,
        stdlib,
        Disposal::Free,
        &mut Diagnostics::default(),
    )
}
