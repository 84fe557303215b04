//! Network namespaces on the real kernel, for the tests of what a host lets
//! in: hosts on one LAN bridge, a "container" behind a host, listeners and
//! connections from a chosen address.

use std::process::{Child, Command, Stdio};

/// Network namespaces, removed when the test ends.
pub(crate) struct Lab {
    prefix: String,
    names: Vec<String>,
    children: Vec<Child>,
}

impl Lab {
    /// An empty lab; `tag` tells its namespaces from other tests'.
    pub(crate) fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("stackc-{tag}{}-", std::process::id()),
            names: Vec::new(),
            children: Vec::new(),
        }
    }

    pub(crate) fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn add(&mut self, name: &str) {
        let ns = self.ns(name);
        run(&["ip", "netns", "add", &ns]);
        self.names.push(ns.clone());
        self.exec(name, &["ip", "link", "set", "lo", "up"]);
    }

    pub(crate) fn exec(&self, name: &str, args: &[&str]) {
        let ns = self.ns(name);
        let mut all = vec!["ip", "netns", "exec", &ns];
        all.extend_from_slice(args);
        run(&all);
    }

    /// A veth pair: `a`'s end `a_if` with `a_addr`, `b`'s end `b_if`.
    pub(crate) fn link(&self, (a, a_if, a_addr): (&str, &str, &str), (b, b_if): (&str, &str)) {
        let (na, nb) = (self.ns(a), self.ns(b));
        run(&[
            "ip", "link", "add", a_if, "netns", &na, "type", "veth", "peer", b_if, "netns", &nb,
        ]);
        self.exec(a, &["ip", "addr", "add", a_addr, "dev", a_if]);
        self.exec(a, &["ip", "link", "set", a_if, "up"]);
        self.exec(b, &["ip", "link", "set", b_if, "up"]);
    }

    /// Python running `code` in the namespace `name`.
    pub(crate) fn python(&self, name: &str, code: &str) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns(name),
            "/usr/bin/python3",
            "-c",
            code,
        ]);
        c
    }

    /// A TCP server in `name` on `port`, answering every connection.
    pub(crate) fn listen(&mut self, name: &str, port: u16) {
        let code = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',{port}))\ns.listen()\nwhile True:\n  c,_=s.accept(); c.sendall(b'ok'); c.close()\n"
        );
        let child = self
            .python(name, &code)
            .stdout(Stdio::null())
            .spawn()
            .expect("network namespace step");
        self.children.push(child);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// Whether `name` gets an answer from `address:port` within a second.
    pub(crate) fn reaches(&self, name: &str, address: &str, port: u16) -> bool {
        let code = format!(
            "import socket\ns=socket.create_connection(('{address}',{port}),timeout=1)\nassert s.recv(2)==b'ok'\n"
        );
        self.python(name, &code)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub(crate) fn stop_listeners(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_listeners();
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

pub(crate) fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("network namespace step");
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
