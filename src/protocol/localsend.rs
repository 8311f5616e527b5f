//! The LocalSend protocol (v2.1, which every LocalSend app of 2026 speaks): the JSON a device
//! announces itself with over multicast and describes itself with over HTTPS, and the
//! bodies of an upload session (`prepare-upload` and its answer). Field names are LocalSend's
//! (camelCase); what a device leaves out is optional here too, since old apps and other
//! implementations leave out different things. The node's adapter is `node::family::localsend`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The multicast group devices announce themselves to.
pub const MULTICAST_ADDR: [u8; 4] = [224, 0, 0, 167];

/// The default port: UDP for announcements, TCP for the HTTPS API.
pub const PORT: u16 = 53317;

/// The protocol version we speak.
pub const VERSION: &str = "2.1";

/// What we say our model is. Other Pigeons answer on LocalSend too; they are listed through
/// their own protocol, so a device with this model is not listed as a LocalSend device.
pub const PIGEON_MODEL: &str = "Pigeon";

/// Largest announcement taken (they are a few hundred bytes).
pub const MAX_ANNOUNCEMENT: usize = 4096;

/// The API's paths.
pub mod path {
    /// Describes the device (GET).
    pub const INFO: &str = "/api/localsend/v2/info";
    /// Answers an announcement with the answerer's description (POST, both ways).
    pub const REGISTER: &str = "/api/localsend/v2/register";
    /// Offers files or a text (POST).
    pub const PREPARE_UPLOAD: &str = "/api/localsend/v2/prepare-upload";
    /// Carries one accepted file's bytes (POST).
    pub const UPLOAD: &str = "/api/localsend/v2/upload";
    /// Ends a session (POST, by the sender).
    pub const CANCEL: &str = "/api/localsend/v2/cancel";
}

/// How a device describes itself: in announcements (with `announce`), in `register` and
/// `info`, and as the sender of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// The name its user gave it ("Nice Orange" by default).
    pub alias: String,
    /// Protocol version, major.minor.
    #[serde(default)]
    pub version: String,
    /// "Samsung", "iPhone", "Linux"… when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    /// `mobile`, `desktop`, `web`, `headless` or `server`, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Over HTTPS the SHA-256 of its certificate (upper-case hex); over HTTP any string.
    pub fingerprint: String,
    /// Its HTTP port (not in `info` answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `https` or `http` (not in `info` answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Whether it serves downloads from a browser (we do not).
    #[serde(default)]
    pub download: bool,
    /// In a multicast message: `true` for an announcement (answer it), `false` for an
    /// answer to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<bool>,
}

impl DeviceInfo {
    /// Whether the device serves HTTPS (the default when it does not say).
    pub fn uses_https(&self) -> bool {
        self.protocol.as_deref() != Some("http")
    }

    /// The device's kind for people: "phone", "desktop"…
    pub fn kind(&self) -> &'static str {
        match self.device_type.as_deref() {
            Some("mobile") => "phone",
            Some("web") => "browser",
            Some("headless") => "headless",
            Some("server") => "server",
            _ => "desktop",
        }
    }
}

/// Times of a file, RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileTimes {
    /// Last modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Last accessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed: Option<String>,
}

/// One file of an offer. Files of a folder carry their path below it in `file_name`
/// (`Photos/2026/a.jpg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    /// The sender's id for it, as in the map's key.
    pub id: String,
    /// Name, or path below an offered folder.
    pub file_name: String,
    /// Bytes.
    pub size: u64,
    /// MIME type (`text/plain` with a `preview` for a text message).
    #[serde(default)]
    pub file_type: String,
    /// Lower- or upper-case hex SHA-256 of the bytes, when the sender computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A text message's text (or a small preview of a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// The file's times, when the sender gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FileTimes>,
}

impl FileMeta {
    /// The text, when this file is a text message (a `text/` type with the text as preview).
    pub fn message_text(&self) -> Option<&str> {
        self.preview.as_deref().filter(|_| self.file_type.starts_with("text/"))
    }
}

/// `prepare-upload`: who offers what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareUpload {
    /// The sender.
    pub info: DeviceInfo,
    /// The files, by the sender's id.
    pub files: BTreeMap<String, FileMeta>,
}

impl PrepareUpload {
    /// The text, when the offer is a text message (one file carrying its text).
    pub fn message_text(&self) -> Option<&str> {
        match self.files.values().collect::<Vec<_>>().as_slice() {
            [only] => only.message_text(),
            _ => None,
        }
    }
}

/// The answer to an accepted `prepare-upload`: the session, and a token per accepted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareAnswer {
    /// The session the uploads name.
    pub session_id: String,
    /// Token for each accepted file, by file id (files left out were declined).
    pub files: BTreeMap<String, String>,
}

/// The fingerprint of a certificate (its DER bytes): SHA-256 in upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    digest.iter().map(|byte| format!("{byte:02X}")).collect()
}

/// The bytes of an upper- or lower-case hex SHA-256 (a fingerprint, a file's `sha256`).
pub fn sha256_bytes(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (at, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[at * 2..at * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of the protocol's README, as the apps send them.
    const ANNOUNCEMENT: &str = r#"{
      "alias": "Nice Orange",
      "version": "2.0",
      "deviceModel": "Samsung",
      "deviceType": "mobile",
      "fingerprint": "random string",
      "port": 53317,
      "protocol": "https",
      "download": true,
      "announce": true
    }"#;

    const PREPARE: &str = r#"{
      "info": {
        "alias": "Nice Orange",
        "version": "2.0",
        "deviceModel": "Samsung",
        "deviceType": "mobile",
        "fingerprint": "random string",
        "port": 53317,
        "protocol": "https",
        "download": true
      },
      "files": {
        "some file id": {
          "id": "some file id",
          "fileName": "my image.png",
          "size": 324242,
          "fileType": "image/jpeg",
          "sha256": "*sha256 hash*",
          "preview": "*preview data*",
          "metadata": {
            "modified": "2021-01-01T12:34:56Z",
            "accessed": "2021-01-01T12:34:56Z"
          }
        },
        "another file id": {
          "id": "another file id",
          "fileName": "another image.jpg",
          "size": 1234,
          "fileType": "image/jpeg",
          "sha256": "*sha256 hash*",
          "preview": "*preview data*"
        }
      }
    }"#;

    #[test]
    fn the_readme_examples_read_and_write_back_the_same_fields() {
        let announced: DeviceInfo = serde_json::from_str(ANNOUNCEMENT).unwrap();
        assert_eq!(announced.alias, "Nice Orange");
        assert_eq!(
            (announced.port, announced.announce, announced.uses_https()),
            (Some(53317), Some(true), true)
        );
        assert_eq!(announced.kind(), "phone");
        let again: serde_json::Value = serde_json::to_value(&announced).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(ANNOUNCEMENT).unwrap());

        let prepare: PrepareUpload = serde_json::from_str(PREPARE).unwrap();
        assert_eq!(prepare.files.len(), 2);
        let image = prepare.files.get("some file id").unwrap();
        assert_eq!((image.file_name.as_str(), image.size), ("my image.png", 324_242));
        assert_eq!(image.metadata.as_ref().unwrap().modified.as_deref(), Some("2021-01-01T12:34:56Z"));
        assert_eq!(prepare.message_text(), None, "two images are not a text");
        let again: serde_json::Value = serde_json::to_value(&prepare).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(PREPARE).unwrap());

        let answer: PrepareAnswer = serde_json::from_str(
            r#"{"sessionId": "mySessionId", "files": {"someFileId": "someFileToken", "someOtherFileId": "someOtherFileToken"}}"#,
        )
        .unwrap();
        assert_eq!(
            (answer.session_id.as_str(), answer.files.get("someFileId").unwrap().as_str()),
            ("mySessionId", "someFileToken")
        );
    }

    #[test]
    fn a_register_and_an_info_answer_leave_out_what_they_may() {
        // `info` answers carry neither port nor protocol; old apps leave out more.
        let info: DeviceInfo =
            serde_json::from_str(r#"{"alias":"Nice Orange","version":"2.0","deviceModel":null,"deviceType":null,"fingerprint":"ABC","download":false}"#)
                .unwrap();
        assert_eq!(
            (info.port, info.uses_https(), info.kind(), info.device_model),
            (None, true, "desktop", None)
        );
        let http: DeviceInfo =
            serde_json::from_str(r#"{"alias":"A","fingerprint":"x","protocol":"http","port":53318}"#)
                .unwrap();
        assert!(!http.uses_https());
        assert!(serde_json::from_str::<DeviceInfo>(r#"{"alias":"no fingerprint"}"#).is_err());
    }

    #[test]
    fn a_text_message_is_one_text_file_with_its_text_as_preview() {
        let text = r#"{"info":{"alias":"Phone","fingerprint":"F"},"files":{"t":{"id":"t","fileName":"a.txt","size":5,"fileType":"text/plain","preview":"hello"}}}"#;
        let offer: PrepareUpload = serde_json::from_str(text).unwrap();
        assert_eq!(offer.message_text(), Some("hello"));
        let file = text.replace("text/plain", "application/pdf");
        assert_eq!(serde_json::from_str::<PrepareUpload>(&file).unwrap().message_text(), None);
    }

    #[test]
    fn fingerprints_are_upper_case_sha256_and_read_back() {
        // SHA-256 of the empty input.
        let empty = fingerprint(b"");
        assert_eq!(empty, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
        assert_eq!(sha256_bytes(&empty.to_lowercase()), sha256_bytes(&empty));
        assert_eq!(sha256_bytes(&empty).unwrap()[0], 0xE3);
        assert_eq!(sha256_bytes("random string"), None);
        assert_eq!(sha256_bytes(&"é".repeat(32)), None);
    }
}
