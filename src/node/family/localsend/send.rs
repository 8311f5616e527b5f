//! What we send to LocalSend devices, each on a thread of its own: a text (one
//! `prepare-upload` with the text as preview; a device that wants the bytes too gets them),
//! an offer of files (a `prepare-upload` that waits for the other user), and, once
//! accepted, the uploads, one file after another, with progress, stopping with a `cancel`
//! when our user cancels.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::Report;
use super::client::{Answer, Client, Payload, Target};
use super::http::percent_encode;
use super::outgoing::TextFailure;
use crate::node::doorbell::Bell;
use crate::node::ending::Ending;
use crate::node::threads::StopFlag;
use crate::node::worker::{Meter, Report as WorkerReport, Reporter};
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::localsend::{DeviceInfo, FileMeta, FileTimes, PrepareAnswer, PrepareUpload, path};
use crate::protocol::transfer::EntryKind;
use crate::store::TransferRecord;

/// How long an offer waits for the other user to accept.
const OFFER_PATIENCE: Duration = Duration::from_secs(600);

/// How long anything else waits for a byte.
const PATIENCE: Duration = Duration::from_secs(30);

/// Bytes read from a file at a time.
const CHUNK: usize = 256 * 1024;

/// The file id of a text message.
const TEXT_ID: &str = "text";

/// What every sending thread needs.
#[derive(Clone)]
pub struct Sender {
    /// How requests are made.
    pub client: Client,
    /// Where reports go.
    pub queue: Bell<Report>,
}

impl Sender {
    /// Sends `text` to `target` as a LocalSend text message, reporting how it went (or
    /// giving up when `stop`, the node's, is raised).
    pub fn text(
        &self,
        target: &Target,
        me: DeviceInfo,
        peer: PeerId,
        msg_id: MsgId,
        text: String,
        stop: &StopFlag,
    ) {
        let bytes = text.into_bytes();
        let meta = FileMeta {
            id: TEXT_ID.into(),
            file_name: format!("{msg_id}.txt"),
            size: bytes.len() as u64,
            file_type: "text/plain".into(),
            sha256: None,
            preview: Some(String::from_utf8_lossy(&bytes).into_owned()),
            metadata: None,
        };
        let offer = PrepareUpload { info: me, files: BTreeMap::from([(TEXT_ID.to_owned(), meta)]) };
        let outcome = match self.prepare(target, &offer, stop) {
            Err(reason) => Err(TextFailure::Unreachable(reason)),
            // 204: the text was all it needed. Some implementations want the bytes too.
            Ok(answer) if answer.status == 204 => Ok(()),
            Ok(answer) if answer.status == 200 => serde_json::from_slice::<PrepareAnswer>(&answer.body)
                .map_err(|err| format!("its answer is not LocalSend's: {err}"))
                .and_then(|session| match session.files.get(TEXT_ID) {
                    Some(token) => {
                        self.upload_bytes(target, &session.session_id, TEXT_ID, token, &bytes, stop)
                    }
                    None => Ok(()),
                })
                .map_err(TextFailure::Refused),
            Ok(answer) => Err(TextFailure::Refused(refusal(answer.status))),
        };
        self.queue.send(Report::TextSent { peer, msg_id, outcome }).ok();
    }

    /// Offers `record`'s files to `target` and reports the answer (after the other user
    /// decided, or `stop` was raised).
    pub fn offer(&self, target: &Target, me: DeviceInfo, record: &TransferRecord, stop: &StopFlag) {
        let offer = PrepareUpload { info: me, files: files_of(record) };
        let outcome = self.prepare(target, &offer, stop);
        self.queue.send(Report::Answered { transfer: record.id, outcome }).ok();
    }

    /// Offers `offer` and waits for the other user's answer.
    fn prepare(&self, target: &Target, offer: &PrepareUpload, stop: &StopFlag) -> Result<Answer, String> {
        let body = serde_json::to_vec(offer).map_err(|err| err.to_string())?;
        let at = match &target.pin {
            Some(pin) => format!("{}?pin={}", path::PREPARE_UPLOAD, percent_encode(pin)),
            None => path::PREPARE_UPLOAD.to_owned(),
        };
        self.client.post(target, &at, "application/json", &body, OFFER_PATIENCE, stop)
    }

    fn upload_bytes(
        &self,
        target: &Target,
        session: &str,
        file: &str,
        token: &str,
        bytes: &[u8],
        stop: &StopFlag,
    ) -> Result<(), String> {
        let target_path = upload_path(session, file, token);
        let answer =
            self.client.post(target, &target_path, "application/octet-stream", bytes, PATIENCE, stop)?;
        if answer.status == 200 { Ok(()) } else { Err(refusal(answer.status)) }
    }

    /// Uploads the accepted files of `record` (tokens by file id in `session`) one after
    /// another, reporting progress and the end as any transfer worker does, until `stop`.
    pub fn upload(
        &self,
        target: &Target,
        record: &TransferRecord,
        session: &PrepareAnswer,
        stop: &StopFlag,
        reporter: &Reporter,
    ) {
        let files: Vec<(usize, &String)> = record
            .entries
            .iter()
            .enumerate()
            .filter_map(|(index, _)| session.files.get(&index.to_string()).map(|token| (index, token)))
            .collect();
        let total = files.iter().map(|(index, _)| record.entries[*index].size).sum();
        let mut meter = Meter::new(reporter.clone(), total, 0);
        let told = Cell::new(false);
        for (index, token) in files {
            let Some(source) = record.sources.get(index) else { continue };
            meter.start_file(u32::try_from(index).unwrap_or(u32::MAX), 0);
            let upload = Upload { target, session: &session.session_id, stop, told: &told };
            let sent = self.upload_file(&upload, index, token, source, &mut meter);
            if stop.is_raised() {
                if !told.get() {
                    self.cancel(target, &session.session_id);
                }
                reporter.send(WorkerReport::Cancelled);
                return;
            }
            if let Err(reason) = sent {
                let name = &record.entries[index].path;
                reporter.send(WorkerReport::Failed(format!("{name}: {reason}")));
                return;
            }
        }
        meter.report();
        reporter.send(WorkerReport::Finished);
    }

    fn upload_file(
        &self,
        upload: &Upload<'_>,
        index: usize,
        token: &str,
        source: &PathBuf,
        meter: &mut Meter,
    ) -> Result<(), String> {
        let Upload { target, session, stop, told } = *upload;
        let mut file =
            File::open(source).map_err(|err| format!("cannot read {}: {err}", source.display()))?;
        let length = file.metadata().map_err(|err| err.to_string())?.len();
        let mut write = |out: &mut dyn Write| -> io::Result<()> {
            let mut buf = vec![0u8; CHUNK];
            let mut left = length;
            let mut send_all = || {
                while left > 0 {
                    if stop.is_raised() {
                        return Err(io::Error::other("stopped"));
                    }
                    let want = meter.slice(buf.len()).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let read = file.read(&mut buf[..want])?;
                    if read == 0 {
                        return Err(io::Error::other("the file got shorter while it was sent"));
                    }
                    out.write_all(&buf[..read])?;
                    meter.add(read as u64);
                    left -= read as u64;
                }
                Ok(())
            };
            let sent = send_all();
            if stop.is_raised() {
                // Told while the upload is still open, so the receiver reads a cancel, not a
                // broken upload.
                self.cancel(target, session);
                told.set(true);
            }
            sent
        };
        let payload = Payload { content_type: "application/octet-stream", length, write: &mut write };
        let target_path = upload_path(session, &index.to_string(), token);
        let answer = self.client.call(target, "POST", &target_path, Some(payload), PATIENCE, stop)?;
        if answer.status == 200 { Ok(()) } else { Err(refusal(answer.status)) }
    }

    /// Tells the device the session is over (best effort: it may be gone).
    pub fn cancel(&self, target: &Target, session: &str) {
        let target_path = format!("{}?sessionId={}", path::CANCEL, percent_encode(session));
        if let Err(err) = self.client.call(target, "POST", &target_path, None, PATIENCE, &StopFlag::default())
        {
            log::debug!("LocalSend cancel to {}: {err}", target.addr);
        }
    }
}

/// One upload session's parts.
#[derive(Clone, Copy)]
struct Upload<'a> {
    target: &'a Target,
    session: &'a str,
    stop: &'a StopFlag,
    /// Whether the receiver was told of a cancel already.
    told: &'a Cell<bool>,
}

/// The LocalSend file list of an offer: every file (folders are the paths of their files),
/// with the entry's index as its id.
fn files_of(record: &TransferRecord) -> BTreeMap<String, FileMeta> {
    record
        .entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.kind == EntryKind::File)
        .map(|(index, entry)| {
            let modified =
                record.sources.get(index).and_then(|source| source.metadata().ok()?.modified().ok());
            let metadata = modified.map(|at| FileTimes {
                modified: Some(
                    chrono::DateTime::<chrono::Utc>::from(at)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
                accessed: None,
            });
            let meta = FileMeta {
                id: index.to_string(),
                file_name: entry.path.clone(),
                size: entry.size,
                file_type: mime_type(&entry.path).into(),
                sha256: None,
                preview: None,
                metadata,
            };
            (index.to_string(), meta)
        })
        .collect()
}

fn upload_path(session: &str, file: &str, token: &str) -> String {
    format!(
        "{}?sessionId={}&fileId={}&token={}",
        path::UPLOAD,
        percent_encode(session),
        percent_encode(file),
        percent_encode(token)
    )
}

/// What a refusing status means, in words (LocalSend's codes).
pub fn refusal(status: u16) -> String {
    match status {
        401 => Ending::PinRefused.reason(),
        403 => String::from("declined"),
        409 => String::from("it is busy with another transfer"),
        429 => String::from("too many wrong PINs; try again in a minute"),
        other => format!("it answered HTTP {other}"),
    }
}

/// The MIME type LocalSend apps show an icon for, by the name's extension.
fn mime_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The transfer a `prepare-upload` answer accepted, or why not.
pub fn accepted(transfer: TransferId, answer: &Answer) -> Result<Option<PrepareAnswer>, String> {
    match answer.status {
        200 => serde_json::from_slice(&answer.body)
            .map(Some)
            .map_err(|err| format!("the answer to offer {transfer} is not LocalSend's: {err}")),
        204 => Ok(None),
        status => Err(refusal(status)),
    }
}
