//! File offers of IP Messenger clients: the attachment list after the text of a
//! `SENDMSG|FILEATTACHOPT`, and the record headers of a `GETDIRFILES` answer.
//!
//! Attachment list: `fileID:name:size:mtime:attr[:ext=val…]:` entries separated by `\a` (BEL),
//! which may have ':' on either side; ':' inside a name is written `::`. fileID is decimal,
//! size, mtime and attr hex. Folder stream records: `hhhh:name:size:attr[:ext=val…]:` where
//! `hhhh` (hex) is the header's own length, followed by `size` bytes for a file.

use super::super::error::DecodeError;

/// Entries accepted in one offer (a larger list is refused whole).
pub const MAX_ATTACHMENTS: usize = 1000;

/// What an offered entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachKind {
    /// A regular file.
    File,
    /// A folder (its size is the total of its files).
    Dir,
    /// In a folder stream: back to the parent folder.
    Up,
}

/// One offered file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The sender's number for it (decimal in the offer, hex in the request).
    pub file_id: u32,
    /// The name as sent (its encoding is the peer's).
    pub name: Vec<u8>,
    /// Bytes (a folder's: of all its files).
    pub size: u64,
    /// File or folder.
    pub kind: AttachKind,
    /// Last modified, in seconds since the Unix epoch, when the sender said (an attachment's
    /// `mtime` field, a folder record's `14=` attribute).
    pub mtime: Option<u64>,
}

fn kind_of(attr: u64) -> Option<AttachKind> {
    match attr & 0xff {
        1 => Some(AttachKind::File),
        2 => Some(AttachKind::Dir),
        3 => Some(AttachKind::Up),
        _ => None,
    }
}

fn hex(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}

/// Splits on single ':' while turning `::` into a ':' inside the field.
fn fields(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    let mut rest = bytes.iter().copied().peekable();
    while let Some(byte) = rest.next() {
        if byte == b':' && rest.next_if_eq(&b':').is_none() {
            out.push(Vec::new());
        } else if let Some(field) = out.last_mut() {
            field.push(byte);
        }
    }
    out
}

/// Reads the attachment list (the part of the extra after the text's NUL). Entries of kinds
/// we do not take (symlinks, devices) are left out; a malformed entry refuses the list.
pub fn parse_attachments(list: &[u8]) -> Result<Vec<Attachment>, DecodeError> {
    let mut out = Vec::new();
    for entry in list.split(|&b| b == 0x07) {
        let entry = entry.strip_prefix(b":").unwrap_or(entry);
        if entry.iter().all(|&b| b == 0 || b == b':') {
            continue;
        }
        // The id is digits, so its ':' is never half of an escaped "::" — which matters when
        // the name starts with ':' ("0:::notes.txt" is file 0, ":notes.txt").
        let mut id_and_rest = entry.splitn(2, |&b| b == b':');
        let (Some(id), Some(rest)) = (id_and_rest.next(), id_and_rest.next()) else {
            return Err(DecodeError::InvalidField("attachment"));
        };
        let fields = fields(rest);
        let [name, size, mtime, attr, ..] = fields.as_slice() else {
            return Err(DecodeError::InvalidField("attachment"));
        };
        let file_id = super::decimal(id).ok_or(DecodeError::InvalidField("attachment id"))?;
        let size = hex(size).ok_or(DecodeError::InvalidField("attachment size"))?;
        let attr = hex(attr).ok_or(DecodeError::InvalidField("attachment attributes"))?;
        if name.is_empty() {
            return Err(DecodeError::InvalidField("attachment name"));
        }
        if let Some(kind @ (AttachKind::File | AttachKind::Dir)) = kind_of(attr) {
            let mtime = hex(mtime).filter(|&mtime| mtime > 0);
            out.push(Attachment { file_id, name: name.clone(), size, kind, mtime });
        }
        if out.len() > MAX_ATTACHMENTS {
            return Err(DecodeError::TooLarge {
                what: "attachment list",
                len: out.len(),
                max: MAX_ATTACHMENTS,
            });
        }
    }
    Ok(out)
}

/// Longest header of a folder-stream record we accept.
pub const MAX_DIR_HEADER: usize = 4096;

/// Reads the header of one folder-stream record (`hhhh:` already removed): name, size and
/// kind. The file id is meaningless here and left 0.
pub fn parse_dir_header(header: &[u8]) -> Result<Attachment, DecodeError> {
    let fields = fields(header);
    let [name, size, attr, extras @ ..] = fields.as_slice() else {
        return Err(DecodeError::InvalidField("folder record"));
    };
    let mtime = extras.iter().find_map(|extra| hex(extra.strip_prefix(b"14=")?)).filter(|&mtime| mtime > 0);
    let size = hex(size).ok_or(DecodeError::InvalidField("folder record size"))?;
    let kind = hex(attr).and_then(kind_of).ok_or(DecodeError::InvalidField("folder record kind"))?;
    if name.is_empty() {
        return Err(DecodeError::InvalidField("folder record name"));
    }
    Ok(Attachment { file_id: 0, name: name.clone(), size, kind, mtime })
}

/// The length prefix of a folder-stream record: hex digits up to the first ':'.
pub fn parse_dir_header_len(prefix: &[u8]) -> Result<usize, DecodeError> {
    let len = hex(prefix).ok_or(DecodeError::InvalidField("folder record length"))?;
    let len = usize::try_from(len).map_err(|_too_big| DecodeError::InvalidField("folder record length"))?;
    if len <= prefix.len() + 1 || len > MAX_DIR_HEADER {
        return Err(DecodeError::TooLarge { what: "folder record header", len, max: MAX_DIR_HEADER });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_iptux_offers_and_the_separator_variants_parse() {
        // From iptux 0.8.3 (PROTOCOL.md section 12): a file, then a folder.
        let file = parse_attachments(b"10000:from_iptux.txt:e:6b025dba:1:\x07").unwrap();
        assert_eq!(
            file,
            [Attachment {
                file_id: 10000,
                name: b"from_iptux.txt".to_vec(),
                size: 14,
                kind: AttachKind::File,
                mtime: Some(0x6b025dba),
            }]
        );
        let dir = parse_attachments(b"10001:idir:d:6b025dba:2:\x07").unwrap();
        assert_eq!(dir.first().map(|d| (d.kind, d.size)), Some((AttachKind::Dir, 13)));
        // IP Messenger for Windows: `:\a:` between entries, ext attributes, `::` in a name.
        let two = parse_attachments(b"1:a::b.txt:10:0:1:14=6b025c8b:\x07:2:c:0:0:2:\x07:").unwrap();
        assert_eq!(two.iter().map(|a| a.name.as_slice()).collect::<Vec<_>>(), [&b"a:b.txt"[..], b"c"]);
        // Without the ':' before the separator, and a symlink that is left out.
        let plain = parse_attachments(b"7:x:1:0:1\x078:link:0:0:4:\x07").unwrap();
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn malformed_offers_and_records_are_errors() {
        for bad in [&b"x:name:1:0:1:\x07"[..], b"1:name:zz:0:1:\x07", b"1::1:0:1:\x07", b"1:name\x07"] {
            assert!(parse_attachments(bad).is_err(), "{bad:?}");
        }
        let many: Vec<u8> =
            (0..=MAX_ATTACHMENTS).flat_map(|n| format!("{n}:f{n}:1:0:1:\x07").into_bytes()).collect();
        assert!(parse_attachments(&many).is_err());
        assert!(parse_dir_header(b"name:zz:1:").is_err());
        assert!(parse_dir_header(b":1:1:").is_err());
        assert!(parse_dir_header_len(b"ffff").is_err());
        assert!(parse_dir_header_len(b"0002").is_err());
        assert!(parse_dir_header_len(b"xyz").is_err());
    }

    #[test]
    fn recorded_iptux_folder_stream_headers_parse() {
        // 002e:idir:000000000:2:14=6b025c8b:16=6b025c8b:  (0x2e = 46 bytes with the prefix)
        let record = b"002e:idir:000000000:2:14=6b025c8b:16=6b025c8b:";
        assert_eq!(parse_dir_header_len(b"002e").unwrap(), record.len());
        let dir = parse_dir_header(&record[5..]).unwrap();
        assert_eq!((dir.name.as_slice(), dir.size, dir.kind), (&b"idir"[..], 0, AttachKind::Dir));
        let file = parse_dir_header(b"one.txt:000000006:1:14=6b025c8b:16=6b025c8b:").unwrap();
        assert_eq!((file.size, file.kind, file.mtime), (6, AttachKind::File, Some(0x6b025c8b)));
        assert_eq!(parse_dir_header(b".:0:3:14=6b025c8b:").unwrap().kind, AttachKind::Up);
    }
}

fn attr_of(kind: AttachKind) -> u8 {
    match kind {
        AttachKind::File => 1,
        AttachKind::Dir => 2,
        AttachKind::Up => 3,
    }
}

/// One entry of our attachment list: `id:name:size:mtime:attr:` then the `\a` separator
/// (an unknown modification time is written 0, as IP Messenger does).
pub fn encode_attachment(
    file_id: u32,
    name: &[u8],
    size: u64,
    mtime: Option<u64>,
    kind: AttachKind,
) -> Vec<u8> {
    let (attr, mtime) = (attr_of(kind), mtime.unwrap_or(0));
    let mut out = format!("{file_id}:").into_bytes();
    out.extend(escape_colons(name));
    out.extend(format!(":{size:x}:{mtime:x}:{attr}:\x07").into_bytes());
    out
}

/// One record header of a folder stream, length prefix included, with the modification
/// time when known. Written `14=t:16=t:` (MTIME, then CREATETIME): iptux reads these two
/// attributes by position, the first as the access time and the second as the modification
/// time, and without them dates the files 1970-01-01; the creation time, which we do not
/// know, is the modification time.
pub fn encode_dir_header(name: &[u8], size: u64, mtime: Option<u64>, kind: AttachKind) -> Vec<u8> {
    let attr = attr_of(kind);
    let mut rest = escape_colons(name);
    rest.extend(format!(":{size:x}:{attr}:").into_bytes());
    if let Some(mtime) = mtime {
        rest.extend(format!("14={mtime:x}:16={mtime:x}:").into_bytes());
    }
    let mut out = format!("{:04x}:", rest.len() + 5).into_bytes();
    out.extend(rest);
    out
}

fn escape_colons(name: &[u8]) -> Vec<u8> {
    name.iter().flat_map(|&b| if b == b':' { vec![b':', b':'] } else { vec![b] }).collect()
}

/// A file request's extra: `packetID:fileID[:offset]` in hex (the offer's packet number and
/// our file id); the offset defaults to 0.
pub fn parse_request(extra: &[u8]) -> Option<(u32, u32, u64)> {
    let mut fields = extra.split(|&b| b == b':');
    let packet = u32::try_from(hex(fields.next()?)?).ok()?;
    let file = u32::try_from(hex(fields.next()?)?).ok()?;
    let offset = fields.next().filter(|f| !f.is_empty()).map_or(Some(0), hex)?;
    Some((packet, file, offset))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
mod encode_tests {
    use super::*;
    use proptest::prelude::*;

    /// A name as a client could send it: any bytes but the list separator and NUL.
    fn wire_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("separator", |b| *b != 0x07 && *b != 0), 1..40)
    }

    fn file_or_folder() -> impl Strategy<Value = AttachKind> {
        prop_oneof![Just(AttachKind::File), Just(AttachKind::Dir)]
    }

    proptest! {
        #[test]
        fn attachment_lists_round_trip(entries in proptest::collection::vec((any::<u32>(), wire_name(), any::<u64>(), proptest::option::of(1..u64::MAX), file_or_folder()), 0..20)) {
            let list: Vec<u8> = entries.iter().flat_map(|(id, name, size, mtime, kind)| encode_attachment(*id, name, *size, *mtime, *kind)).collect();
            let expected: Vec<Attachment> = entries
                .into_iter()
                .map(|(file_id, name, size, mtime, kind)| Attachment { file_id, name, size, kind, mtime })
                .collect();
            prop_assert_eq!(parse_attachments(&list).unwrap(), expected);
        }

        #[test]
        fn folder_records_round_trip(name in wire_name(), size in any::<u64>(), mtime in proptest::option::of(1..u64::MAX), kind in file_or_folder()) {
            let header = encode_dir_header(&name, size, mtime, kind);
            let colon = header.iter().position(|&b| b == b':').unwrap();
            prop_assert_eq!(parse_dir_header_len(&header[..colon]).unwrap(), header.len());
            let record = parse_dir_header(&header[colon + 1..]).unwrap();
            prop_assert_eq!((record.name, record.size, record.kind, record.mtime), (name, size, kind, mtime));
        }
    }

    #[test]
    fn our_offers_records_and_their_requests_round_trip() {
        let list = [
            encode_attachment(0, b"a:b.txt", 14, Some(0x6b025c8b), AttachKind::File),
            encode_attachment(1, b"dir", 13, None, AttachKind::Dir),
            // Found by the round-trip property: a leading ':' once merged into the id.
            encode_attachment(2, b":notes:", 1, None, AttachKind::File),
        ]
        .concat();
        let parsed = parse_attachments(&list).unwrap();
        assert_eq!(
            parsed.iter().map(|a| (a.file_id, a.name.as_slice(), a.size)).collect::<Vec<_>>(),
            [(0, &b"a:b.txt"[..], 14), (1, b"dir", 13), (2, b":notes:", 1)]
        );
        let header = encode_dir_header(b"one.txt", 6, Some(0x6b025c8b), AttachKind::File);
        // As iptux writes it, modification time included.
        assert!(
            header.ends_with(b"one.txt:6:1:14=6b025c8b:16=6b025c8b:"),
            "{:?}",
            String::from_utf8_lossy(&header)
        );
        let colon = header.iter().position(|&b| b == b':').unwrap();
        assert_eq!(parse_dir_header_len(&header[..colon]).unwrap(), header.len());
        assert_eq!(parse_dir_header(&header[colon + 1..]).unwrap().size, 6);
        // Recorded: iptux asks `13de702:0:0`; IP Messenger for Windows `13de702:1:`.
        assert_eq!(parse_request(b"13de702:0:0"), Some((0x13de702, 0, 0)));
        assert_eq!(parse_request(b"13de702:1:"), Some((0x13de702, 1, 0)));
        assert_eq!(parse_request(b"13de702:1:ff"), Some((0x13de702, 1, 255)));
        assert_eq!(parse_request(b"zz:1:0"), None);
    }
}
