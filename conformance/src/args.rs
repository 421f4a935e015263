//! The demos' shared command line: `[--size MIB] [--seed N]`.

/// Parses `--size MIB` and `--seed N` (defaults: 100 MiB, seed 1) from
/// the process arguments; `--help` prints the usage for `program` and
/// exits. Returns the size in MiB and the seed, or a message for the user.
pub fn size_and_seed(program: &str) -> Result<(usize, u64), String> {
    parse(program, std::env::args().skip(1))
}

fn parse(program: &str, mut args: impl Iterator<Item = String>) -> Result<(usize, u64), String> {
    let (mut size_mib, mut seed) = (100usize, 1u64);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--size" => size_mib = value("--size")? as usize,
            "--seed" => seed = value("--seed")?,
            "-h" | "--help" => {
                println!("usage: {program} [--size MIB] [--seed N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if size_mib == 0 {
        return Err("--size must be at least 1 MiB".into());
    }
    Ok((size_mib, seed))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn run(args: &[&str]) -> Result<(usize, u64), String> {
        parse("demo", args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_values_and_errors() {
        assert_eq!(run(&[]), Ok((100, 1)));
        assert_eq!(run(&["--size", "5", "--seed", "9"]), Ok((5, 9)));
        assert!(run(&["--size"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--size", "x"]).unwrap_err().starts_with("--size"));
        assert!(run(&["--size", "0"]).is_err());
        assert!(run(&["--bogus"]).unwrap_err().contains("unknown argument"));
    }
}
