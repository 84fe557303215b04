//! Varied stacks for property tests: services of every stdlib kind and of
//! images, with ports, health checks, replicas, references between them,
//! routes behind nginx or HAProxy, on one to three hosts, and the same
//! services on Kubernetes. Deterministic (a fixed seed), so a failure is
//! reproducible. `real_programs` builds those the checker accepts and runs
//! every generated file through its real validator.

/// xorshift64*: deterministic, so a failure is reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One generated stack: (name, text).
pub fn stacks(count: usize, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|i| (format!("generated-{i}"), stack(&mut rng, i)))
        .collect()
}

fn stack(rng: &mut Rng, index: usize) -> String {
    let mut s = format!(
        "stack gen{index}\n\nsecret db_password\nsecret cache_password\nsecret api_key\n\n"
    );
    // HAProxy checks its servers actively, so its services have health checks.
    let proxy = if rng.chance(50) { "nginx" } else { "haproxy" };
    let n = 2 + rng.below(5);
    // Replicas on a host other than the proxy's would publish one port several
    // times (E0405): replicas only on a single host.
    let hosts = 1 + rng.below(3);
    let mut services: Vec<(String, &str)> = Vec::new();
    let mut http: Vec<String> = Vec::new();
    for i in 0..n {
        let name = format!("svc{i}");
        let kind = match rng.below(6) {
            0 => "postgres",
            1 => "redis",
            2 => "redis_auth",
            _ => "app",
        };
        match kind {
            "postgres" => {
                s.push_str(&format!(
                    "service {name}: postgres {{\n  user = \"app{i}\"\n  password = secret.db_password\n}}\n\n"
                ));
            }
            "redis" => s.push_str(&format!("service {name}: redis {{}}\n\n")),
            "redis_auth" => s.push_str(&format!(
                "service {name}: redis_auth {{\n  password = secret.cache_password\n}}\n\n"
            )),
            _ => {
                let port = 8000 + i;
                s.push_str(&format!(
                    "service {name} {{\n  image = \"registry.example.com/{name}:1.{i}.0\"\n  port http = {port}\n"
                ));
                if proxy == "haproxy" || rng.chance(70) {
                    s.push_str("  health { http = \"/health\" }\n");
                }
                if hosts == 1 && rng.chance(60) {
                    s.push_str(&format!("  replicas = {}\n", 2 + rng.below(2)));
                }
                s.push_str("  env {\n    LOG_LEVEL = \"info\"\n    API_KEY = secret.api_key\n");
                // References to services declared before (no cycles).
                for (j, (dep, dep_kind)) in services.iter().enumerate() {
                    if rng.chance(50) {
                        let attr = match *dep_kind {
                            "postgres" if rng.chance(50) => "read_url",
                            _ => "url",
                        };
                        s.push_str(&format!("    DEP_{j}_URL = {dep}.{attr}\n"));
                    }
                }
                s.push_str("  }\n");
                s.push_str(&format!("  route \"/{name}/\"\n}}\n\n"));
                http.push(name.clone());
            }
        }
        services.push((name, kind));
    }
    // Compose: one to three hosts; every service on one of them, the app
    // services sometimes on two.
    let mut runs: Vec<Vec<String>> = vec![Vec::new(); hosts];
    for (name, kind) in &services {
        let h = rng.below(hosts);
        runs[h].push(name.clone());
        if *kind == "app" && hosts > 1 && rng.chance(40) {
            runs[(h + 1) % hosts].push(name.clone());
        }
    }
    // HA modes on hosts: a database under Patroni or streaming replication,
    // a password-protected Redis watched by Sentinel on three hosts.
    let mut overrides = String::new();
    for (name, kind) in &services {
        match *kind {
            "postgres" if hosts >= 2 && rng.chance(60) => {
                for run in runs.iter_mut() {
                    if !run.contains(name) {
                        run.push(name.clone());
                    }
                }
                let mode = if rng.chance(50) {
                    "patroni"
                } else {
                    "streaming"
                };
                overrides.push_str(&format!(
                    "  override {name} {{\n    image = \"postgres:16\"\n    ha {{\n      mode = {mode}\n      replication_password = secret.db_password\n    }}\n  }}\n"
                ));
            }
            "redis_auth" if hosts == 3 && rng.chance(70) => {
                for run in runs.iter_mut() {
                    if !run.contains(name) {
                        run.push(name.clone());
                    }
                }
                overrides.push_str(&format!("  override {name} {{ ha = sentinel }}\n"));
            }
            _ => {}
        }
    }
    s.push_str("topology hosts {\n");
    s.push_str(&overrides);
    for (h, run) in runs.iter().enumerate() {
        s.push_str(&format!(
            "  host h{h} {{\n    address = \"10.9.{index}.{}\"\n    run = [{}]\n  }}\n",
            h + 1,
            run.join(", ")
        ));
    }
    if !http.is_empty() {
        s.push_str(&format!("  proxy edge: {proxy} {{ host = h0 }}\n"));
    }
    s.push_str("}\n\n");
    // The same services on Kubernetes.
    let all: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    s.push_str(&format!(
        "topology cluster {{\n  platform = kubernetes\n  run = [{}]\n}}\n",
        all.join(", ")
    ));
    s
}
