//! The `stackc` binary: everything is in `stackc::cli`.

fn main() {
    std::process::exit(stackc::cli::run(std::env::args_os()));
}
