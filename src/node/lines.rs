//! Reading the JSON-lines command stream (daemon stdin, control socket) with a size limit,
//! so one runaway line cannot exhaust memory.

use std::io::{self, BufRead, Read};

use super::command::Command;

/// Longest command line accepted: a maximal text JSON-escaped fits with room to spare.
pub const MAX_COMMAND_LINE: usize = 1024 * 1024;

/// One line of input.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A valid command.
    Command(Command),
    /// A line that is not a valid command; the text says why.
    Invalid(String),
    /// End of input.
    End,
}

/// Reads the next non-blank line and parses it as a command.
pub fn read_command<R: BufRead>(reader: &mut R) -> io::Result<Line> {
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let limit = u64::try_from(MAX_COMMAND_LINE + 1).unwrap_or(u64::MAX);
        let read = reader.by_ref().take(limit).read_until(b'\n', &mut bytes)?;
        if read == 0 {
            return Ok(Line::End);
        }
        if bytes.len() > MAX_COMMAND_LINE {
            reader.skip_until(b'\n')?;
            return Ok(Line::Invalid(format!("command line longer than {MAX_COMMAND_LINE} bytes")));
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Ok(Line::Invalid(String::from("command line is not UTF-8")));
        };
        let text = text.trim();
        if !text.is_empty() {
            return Ok(match Command::from_json_line(text) {
                Ok(command) => Line::Command(command),
                Err(err) => Line::Invalid(err),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands_skips_blanks_and_reports_bad_lines() {
        let mut input: &[u8] = b"{\"type\":\"list_peers\"}\n\n  \nnope\n\xff\xfe\n{\"type\":\"stats\"}";
        assert_eq!(read_command(&mut input).unwrap(), Line::Command(Command::ListPeers));
        assert!(matches!(read_command(&mut input).unwrap(), Line::Invalid(_)));
        assert_eq!(read_command(&mut input).unwrap(), Line::Invalid("command line is not UTF-8".into()));
        assert_eq!(read_command(&mut input).unwrap(), Line::Command(Command::Stats));
        assert_eq!(read_command(&mut input).unwrap(), Line::End);
    }

    #[test]
    fn overlong_line_is_refused_and_the_next_line_still_reads() {
        let mut data = vec![b'x'; MAX_COMMAND_LINE + 10];
        data.extend_from_slice(b"\n{\"type\":\"shutdown\"}\n");
        let mut input = io::BufReader::new(&data[..]);
        assert!(matches!(read_command(&mut input).unwrap(), Line::Invalid(_)));
        assert_eq!(read_command(&mut input).unwrap(), Line::Command(Command::Shutdown));
    }
}
