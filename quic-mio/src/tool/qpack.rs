//! `quic qpack`: QPACK offline interop (RFC 9204) with the QPACK interop
//! collection's formats: decode another encoder's file to QIF, or encode a
//! QIF into the record format, on standard output.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use h3_proto::qpack::qif;

use crate::tool::Failure;

#[derive(Args, Debug)]
pub(crate) struct QpackArgs {
    #[command(subcommand)]
    command: QpackCommand,
}

#[derive(Subcommand, Debug)]
enum QpackCommand {
    /// Decode an encoded file (records of stream id, length, bytes) and
    /// write its field sections as QIF, in stream order.
    Decode {
        #[command(flatten)]
        settings: Settings,
        /// The encoded file.
        file: PathBuf,
    },
    /// Encode a QIF file (section n on stream n) and write the records.
    Encode {
        #[command(flatten)]
        settings: Settings,
        /// 1: every section is acknowledged as soon as it is written; 0:
        /// the encoder hears nothing back.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
        ack_mode: u8,
        /// The QIF file.
        file: PathBuf,
    },
}

/// The decoder's settings the file was (or is to be) encoded for.
#[derive(Args, Debug)]
struct Settings {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY.
    #[arg(long, default_value_t = 0)]
    table_size: u64,
    /// SETTINGS_QPACK_BLOCKED_STREAMS.
    #[arg(long, default_value_t = 0)]
    blocked_streams: u64,
}

pub(crate) fn run(args: &QpackArgs) -> Result<(), Failure> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Failure::new(Failure::FILE, format!("{}: {e}", path.display())))
    };
    let output = match &args.command {
        QpackCommand::Decode { settings, file } => {
            let input = read(file)?;
            let sections =
                qif::decode_records(&input, settings.table_size, settings.blocked_streams)
                    .map_err(|e| Failure::other(format!("{}: {e}", file.display())))?;
            let mut out = Vec::new();
            qif::write_qif(sections.iter().map(|(_, fields)| fields.as_slice()), &mut out);
            out
        }
        QpackCommand::Encode { settings, ack_mode, file } => {
            let input = read(file)?;
            let sections = qif::parse_qif(&input)
                .map_err(|e| Failure::other(format!("{}: {e}", file.display())))?;
            qif::encode_sections(
                &sections,
                settings.table_size,
                settings.blocked_streams,
                *ack_mode == 1,
            )
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::other(format!("standard output: {e}")))
}
