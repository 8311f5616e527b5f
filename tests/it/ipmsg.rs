//! IP Messenger peers, played by a scripted client on loopback (a UDP socket on port 2425 of
//! its own address): a FeiQ that speaks GBK, resends and says goodbye; and a port held by
//! another client.

use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use pigeon::protocol::ipmsg::entry::Entry;
use pigeon::protocol::ipmsg::text::{self, Charset};
use pigeon::protocol::ipmsg::{IPMSG_PORT, Packet, attach, mode, opt};
use pigeon::store::{MessageState, TransferState, Trust};
use pigeon::{Command, Event};

use crate::util::{Daemon, Net, SHORT};

const FEIQ_VERSION: &[u8] = b"1_lbt6_0#128#74E6E2152F9D#0#0#0#4001#9";

/// A scripted IP Messenger client at `ip:2425`.
struct Client {
    socket: UdpSocket,
    next: u32,
}

impl Client {
    fn bind(ip: std::net::Ipv4Addr) -> Client {
        let socket = UdpSocket::bind((ip, IPMSG_PORT)).unwrap();
        Client { socket, next: 1 }
    }

    fn send(&mut self, to: SocketAddrV4, command: u32, extra: Vec<u8>) -> u32 {
        self.next += 1;
        let packet = Packet {
            version: FEIQ_VERSION.to_vec(),
            packet_no: self.next,
            user: b"zhang".to_vec(),
            host: b"zhang-pc".to_vec(),
            command,
            extra,
        };
        self.socket.send_to(&packet.encode(), to).unwrap();
        self.next
    }

    /// Waits for a packet `pick` accepts, skipping others.
    fn expect<T>(&self, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = Instant::now() + SHORT;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "client: no {what} within {SHORT:?}");
            self.socket.set_read_timeout(Some(left)).unwrap();
            let Ok((len, _)) = self.socket.recv_from(&mut buf) else { continue };
            let packet = Packet::decode(&buf[..len]).unwrap();
            if let Some(found) = pick(&packet) {
                return found;
            }
        }
    }
}

/// Ana, a daemon announcing to a scripted client at address .9 of `net`, and that client
/// once Ana's BR_ENTRY reached it.
struct Meeting {
    client: Client,
    ana: Daemon,
    /// Ana's IP Messenger address.
    ana_ipmsg: SocketAddrV4,
    /// Ana's BR_ENTRY as the client received it.
    entry: Packet,
    /// Ana's flags (to restart her).
    flags: Vec<String>,
}

fn meet(net: &Net, data_dir: &std::path::Path, name: &str, extra_flags: &[String]) -> Meeting {
    let client = Client::bind(net.ip(9));
    let mut flags = net.flags(1, 1, data_dir);
    flags.extend(["--target".into(), net.ip(9).to_string()]);
    flags.extend_from_slice(extra_flags);
    let ana = Daemon::start(name, &flags);
    let entry = client.expect("Ana's BR_ENTRY", |p| (p.mode() == mode::BR_ENTRY).then(|| p.clone()));
    Meeting { client, ana, ana_ipmsg: SocketAddrV4::new(net.ip(1), IPMSG_PORT), entry, flags }
}

#[test]
fn a_feiq_client_is_listed_and_messages_go_both_ways_in_gbk_once_each() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let Meeting { mut client, mut ana, ana_ipmsg, entry, .. } =
        meet(&net, &dirs.path().join("ana"), "Ana", &[]);

    // Ana announces itself, in UTF-8 and marked as Pigeon.
    assert!(entry.version.starts_with(b"1_pigeon"), "{:?}", String::from_utf8_lossy(&entry.version));
    assert!(entry.has(opt::CAPUTF8OPT));
    assert_eq!(Entry::decode(&entry.extra, false).nick, "Ana");

    // Zhang answers in GBK, as FeiQ does.
    let nick =
        [text::encode("张三", Charset::Gb18030), vec![0], text::encode("研发部", Charset::Gb18030)].concat();
    client.send(ana_ipmsg, mode::ANSENTRY, nick);
    let zhang = ana.expect(SHORT, "Zhang joining", |event| match event {
        Event::PeerJoined { peer } if peer.client.is_some() => Some(peer.clone()),
        _ => None,
    });
    assert_eq!((zhang.name.as_str(), zhang.group.as_str()), ("张三", "研发部"));
    assert_eq!((zhang.client.as_deref(), zhang.trust, zhang.key), (Some("FeiQ"), Trust::Unencrypted, None));

    // Ana writes; the first copy goes unanswered, the resend (same number) is acknowledged.
    ana.send(&Command::SendMessage { to: vec![zhang.id], text: "你好，张三".into(), tag: None });
    let first = client.expect("the message", |p| (p.mode() == mode::SENDMSG).then(|| p.clone()));
    assert!(first.has(opt::SENDCHECKOPT) && !first.has(opt::UTF8OPT), "FeiQ gets GBK: {:#x}", first.command);
    assert_eq!(text::decode(&first.extra, false).0, "你好，张三");
    let again = client.expect("the resend", |p| (p.mode() == mode::SENDMSG).then(|| p.clone()));
    assert_eq!(again, first, "a resend is the identical packet");
    client.send(ana_ipmsg, mode::RECVMSG, first.packet_no.to_string().into_bytes());
    ana.expect(SHORT, "delivered", |event| match event {
        Event::MessageStateChanged { state: MessageState::Delivered, peer, .. } if *peer == zhang.id => {
            Some(())
        }
        _ => None,
    });

    // Zhang writes (with FeiQ's font suffix) and resends: shown once, acknowledged twice.
    let body = text::encode("收到{/font;-12;0;0;0;400;0;0;0;134;宋体}", Charset::Gb18030);
    let number = client.send(ana_ipmsg, mode::SENDMSG | opt::SENDCHECKOPT, body.clone());
    let resend = Packet {
        version: FEIQ_VERSION.to_vec(),
        packet_no: number,
        user: b"zhang".to_vec(),
        host: b"zhang-pc".to_vec(),
        command: mode::SENDMSG | opt::SENDCHECKOPT,
        extra: body,
    };
    client.socket.send_to(&resend.encode(), ana_ipmsg).unwrap();
    for copy in ["first", "second"] {
        client.expect(&format!("the {copy} ack"), |p| {
            (p.mode() == mode::RECVMSG && p.extra == number.to_string().as_bytes()).then_some(())
        });
    }
    let received = ana.expect(SHORT, "Zhang's message", |event| match event {
        Event::MessageReceived { message } => Some(message.text.clone()),
        _ => None,
    });
    assert_eq!(received, "收到");
    let later = ana.drain_for(Duration::from_millis(300));
    assert!(!later.iter().any(|e| matches!(e, Event::MessageReceived { .. })), "shown once: {later:?}");

    // Zhang quits.
    client.send(ana_ipmsg, mode::BR_EXIT, Vec::new());
    ana.expect(SHORT, "Zhang leaving", |event| match event {
        Event::PeerLeft { id, .. } if *id == zhang.id => Some(()),
        _ => None,
    });
}

#[test]
fn a_taken_ip_messenger_port_is_reported_and_pigeon_peers_still_work() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Another IP Messenger client already holds Ana's port.
    let _feiq = UdpSocket::bind((net.ip(1), IPMSG_PORT)).unwrap();
    let reason =
        crate::util::family_unavailable_yet_pigeons_talk(&net, dirs.path(), pigeon::protocol::Family::Ipmsg);
    assert!(reason.contains("2425"), "{reason}");
}

/// The next connection to `listener`, or `None` after [`SHORT`]: a node that never comes
/// must fail the test, not hang it.
fn accept_within(listener: &std::net::TcpListener) -> Option<std::net::TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + SHORT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return Some(stream);
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::park_timeout(Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
}

/// Serves a scripted client's offer over TCP the way IP Messenger clients do: each request
/// (`GETFILEDATA`, `GETDIRFILES`) gets the next answer, raw, then the connection closes.
/// Returns the requests as `command:extra`.
fn serve_offer(
    listener: std::net::TcpListener,
    answers: Vec<Vec<u8>>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::Builder::new()
        .name("it-ipmsg-server".into())
        .spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let Some(mut stream) = accept_within(&listener) else { return requests };
                stream.set_read_timeout(Some(SHORT)).unwrap();
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while std::io::Read::read(&mut stream, &mut byte).unwrap() == 1 && byte[0] != 0 {
                    request.push(byte[0]);
                }
                let packet = Packet::decode(&request).unwrap();
                std::io::Write::write_all(&mut stream, &answer).unwrap();
                requests.push(format!("{:#x}:{}", packet.command, String::from_utf8_lossy(&packet.extra)));
            }
            requests
        })
        .unwrap()
}

/// One folder-stream record: `hhhh:` header length, header, then the content.
fn record(name: &str, kind: u8, content: &[u8]) -> Vec<u8> {
    let rest = format!("{}:{:x}:{kind}:14=6b025c8b:", name.replace(':', "::"), content.len());
    let header = format!("{:04x}:{rest}", rest.len() + 5);
    [header.as_bytes(), content].concat()
}

#[test]
fn files_and_folders_offered_by_an_ip_messenger_client_arrive_with_safe_names() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let downloads = dirs.path().join("downloads");
    let server = serve_offer(
        std::net::TcpListener::bind((net.ip(9), IPMSG_PORT)).unwrap(),
        vec![
            b"hello from feiq\n".to_vec(),
            [
                record("相册", 2, b""),
                record("a.txt", 1, b"12345\n"),
                record("..", 2, b""),
                record("../../escape.txt", 1, b"caught\n"),
                record(".", 3, b""),
                record(".", 3, b""),
            ]
            .concat(),
        ],
    );
    let download_flags = ["--download-dir".into(), downloads.display().to_string()];
    let Meeting { mut client, mut ana, ana_ipmsg, entry, .. } =
        meet(&net, &dirs.path().join("ana"), "Ana-files", &download_flags);
    assert!(entry.has(opt::FILEATTACHOPT), "Ana takes offers");
    client.send(ana_ipmsg, mode::ANSENTRY, b"Zhang\0".to_vec());
    ana.expect(SHORT, "Zhang joining", |event| match event {
        Event::PeerJoined { peer } if peer.client.is_some() => Some(()),
        _ => None,
    });

    let list = [text::encode("报告.txt", Charset::Gb18030), b":10:6b025dba:1:\x07:".to_vec()].concat();
    let extra = [
        b"\0".to_vec(),
        b"10000:".to_vec(),
        list,
        "10001:".as_bytes().to_vec(),
        text::encode("相册", Charset::Gb18030),
        b":d:6b025dba:2:\x07".to_vec(),
    ]
    .concat();
    let offer = client.send(ana_ipmsg, mode::SENDMSG | opt::FILEATTACHOPT, extra);
    let transfer = ana.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    });
    assert_eq!(transfer.state, TransferState::Offered, "never accepted without the user");
    assert_eq!(transfer.entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["报告.txt", "相册"]);
    // Until it arrives, nobody knows what the folder holds (not "0 files").
    assert_eq!(transfer.summary, "1 file in 1 folder, 29 B: 报告.txt, 相册");

    ana.send(&Command::AcceptTransfer { transfer_id: transfer.transfer_id, always: false });
    let mut listed = None;
    ana.expect(SHORT, "completion", |event| match event {
        Event::TransferUpdated { transfer } => {
            listed = Some(transfer.clone());
            None
        }
        Event::TransferStateChanged { state: TransferState::Completed, .. } => Some(()),
        Event::TransferStateChanged { state: TransferState::Failed, reason, .. } => {
            panic!("failed: {reason}")
        }
        _ => None,
    });
    // Once it arrived, the transfer lists what the folder held.
    let listed = listed.expect("the folder's contents are reported");
    assert_eq!((listed.files, listed.folders, listed.total_bytes), (3, 2, 29), "{listed:?}");
    assert_eq!(listed.summary, "3 files in 2 folders, 29 B: 报告.txt, 相册");
    let requests = server.join().unwrap();
    assert_eq!(requests, [format!("0x60:{offer:x}:2710:0:"), format!("0x62:{offer:x}:2711:0:")]);
    assert_eq!(std::fs::read(downloads.join("报告.txt")).unwrap(), b"hello from feiq\n");
    assert_eq!(std::fs::read(downloads.join("相册/a.txt")).unwrap(), b"12345\n");
    // ".." became a plain folder name and "../../escape.txt" a plain file name inside it.
    assert_eq!(std::fs::read(downloads.join("相册/_/.._.._escape.txt")).unwrap(), b"caught\n");
    assert!(!dirs.path().join("escape.txt").exists() && !downloads.join("escape.txt").exists());
}

#[test]
fn a_file_cut_short_or_a_folder_bigger_than_offered_fails_and_leaves_nothing_behind() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let downloads = dirs.path().join("downloads");
    let listener = std::net::TcpListener::bind((net.ip(9), IPMSG_PORT)).unwrap();
    let overflowing = [record("d", 2, b""), record("f", 1, b"123456"), record(".", 3, b"")].concat();
    let server = serve_offer(listener, vec![b"only ten b".to_vec(), overflowing]);
    let download_flags = ["--download-dir".into(), downloads.display().to_string()];
    let Meeting { mut client, mut ana, ana_ipmsg, .. } =
        meet(&net, &dirs.path().join("ana"), "Ana-short", &download_flags);
    client.send(ana_ipmsg, mode::ANSENTRY, b"Zhang\0".to_vec());
    for (list, expected) in [
        (&b"\x0010000:big.bin:64:6b025dba:1:\x07"[..], "10 of 100"),
        (b"\x0010001:d:3:6b025dba:2:\x07", "more than the 3 bytes"),
    ] {
        client.send(ana_ipmsg, mode::SENDMSG | opt::FILEATTACHOPT, list.to_vec());
        let transfer = ana.expect(SHORT, "the offer", |event| match event {
            Event::TransferAdded { transfer, .. } => Some(transfer.transfer_id),
            _ => None,
        });
        ana.send(&Command::AcceptTransfer { transfer_id: transfer, always: false });
        let reason = ana.expect(SHORT, "the failure", |event| match event {
            Event::TransferStateChanged { state: TransferState::Failed, reason, .. } => Some(reason.clone()),
            Event::TransferStateChanged { state: TransferState::Completed, .. } => {
                panic!("completed: {list:?}")
            }
            _ => None,
        });
        assert!(reason.contains(expected), "{reason}");
    }
    server.join().unwrap();
    let left: Vec<_> = std::fs::read_dir(&downloads)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing in the download folder: {left:?}");
}

/// Fetches one entry of an offer from `addr` as the client at `from` does; returns
/// everything sent.
fn fetch(from: std::net::Ipv4Addr, addr: SocketAddrV4, command: u32, offer: u32, file_id: u32) -> Vec<u8> {
    // From the client's own address: only the peer an offer went to may fetch it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddrV4::new(from, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    let request = Packet {
        version: FEIQ_VERSION.to_vec(),
        packet_no: 900,
        user: b"zhang".to_vec(),
        host: b"zhang-pc".to_vec(),
        command,
        extra: format!("{offer:x}:{file_id:x}:0:").into_bytes(),
    };
    std::io::Write::write_all(&mut stream, &request.encode()).unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut answer).unwrap();
    answer
}

/// One record of a folder stream: kind (`d`, `f`, `u`), name and content.
type Record = (char, String, Vec<u8>);

/// A folder stream as records, and each record's modification time.
fn records(mut stream: &[u8]) -> (Vec<Record>, Vec<Option<u64>>) {
    let mut out = Vec::new();
    let mut mtimes = Vec::new();
    while !stream.is_empty() {
        let colon = stream.iter().position(|&b| b == b':').unwrap();
        let len = attach::parse_dir_header_len(&stream[..colon]).unwrap();
        let record = attach::parse_dir_header(&stream[colon + 1..len]).unwrap();
        let content_len =
            if record.kind == attach::AttachKind::File { usize::try_from(record.size).unwrap() } else { 0 };
        let kind = match record.kind {
            attach::AttachKind::File => 'f',
            attach::AttachKind::Dir => 'd',
            attach::AttachKind::Up => 'u',
        };
        out.push((kind, text::decode(&record.name, false).0, stream[len..len + content_len].to_vec()));
        mtimes.push(record.mtime);
        stream = &stream[len + content_len..];
    }
    (out, mtimes)
}

/// A file's modification time in seconds since the Unix epoch.
fn mtime_of(path: &std::path::Path) -> u64 {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn an_ip_messenger_client_fetches_the_files_and_folders_we_offer() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let report = dirs.path().join("报告.txt");
    let content: Vec<u8> = (0..3000u32).map(|n| (n % 251) as u8).collect();
    std::fs::write(&report, &content).unwrap();
    let album = dirs.path().join("相册");
    std::fs::create_dir_all(album.join("sub")).unwrap();
    std::fs::create_dir_all(album.join("sub2")).unwrap();
    std::fs::write(album.join("a.txt"), b"12345\n").unwrap();
    std::fs::write(album.join("sub/b.txt"), b"abcdef\n").unwrap();

    let Meeting { mut client, mut ana, ana_ipmsg, .. } =
        meet(&net, &dirs.path().join("ana"), "Ana-send", &[]);
    client.send(ana_ipmsg, mode::ANSENTRY, b"Zhang\0".to_vec());
    let zhang = ana.expect(SHORT, "Zhang", |event| match event {
        Event::PeerJoined { peer } if peer.client.is_some() => Some(peer.id),
        _ => None,
    });

    ana.send(&Command::SendFiles { to: vec![zhang], paths: vec![report.clone(), album.clone()], tag: None });
    let offer = client
        .expect("the offer", |p| (p.mode() == mode::SENDMSG && p.has(opt::FILEATTACHOPT)).then(|| p.clone()));
    client.send(ana_ipmsg, mode::RECVMSG, offer.packet_no.to_string().into_bytes());
    let list = offer.extra.splitn(2, |&b| b == 0).nth(1).unwrap();
    let offered = attach::parse_attachments(list).unwrap();
    let names: Vec<(String, u64)> =
        offered.iter().map(|a| (text::decode(&a.name, false).0, a.size)).collect();
    assert_eq!(
        names,
        [("报告.txt".to_owned(), 3000), ("相册".to_owned(), 13)],
        "GBK names, folder with its total"
    );

    let file = offered.iter().find(|a| a.kind == attach::AttachKind::File).unwrap();
    assert_eq!(file.mtime, Some(mtime_of(&report)), "the offer says when the file was last modified");
    // Someone else asking for it gets nothing.
    assert!(fetch(net.ip(8), ana_ipmsg, 0x60, offer.packet_no, file.file_id).is_empty());
    // The file and the folder at once, as iptux fetches them.
    let folder = offered.iter().find(|a| a.kind == attach::AttachKind::Dir).unwrap();
    let (packet_no, file_id, folder_id, from) = (offer.packet_no, file.file_id, folder.file_id, net.ip(9));
    let folder_fetch = std::thread::Builder::new()
        .name("it-fetch-folder".into())
        .spawn(move || fetch(from, ana_ipmsg, 0x200062, packet_no, folder_id))
        .unwrap();
    assert_eq!(fetch(net.ip(9), ana_ipmsg, 0x60, packet_no, file_id), content);
    let stream = folder_fetch.join().unwrap();
    let expected = [
        ('d', "相册", &b""[..]),
        ('f', "a.txt", b"12345\n"),
        ('d', "sub", b""),
        ('f', "b.txt", b"abcdef\n"),
        ('u', ".", b""),
        ('d', "sub2", b""),
        ('u', ".", b""),
        ('u', ".", b""),
    ];
    let (got, mtimes) = records(&stream);
    assert_eq!(got.iter().map(|(k, n, c)| (*k, n.as_str(), c.as_slice())).collect::<Vec<_>>(), expected);
    // Every record says when its file or folder was last modified (else clients date the
    // files 1970-01-01).
    assert_eq!(mtimes[1], Some(mtime_of(&album.join("a.txt"))));
    assert_eq!(mtimes[3], Some(mtime_of(&album.join("sub/b.txt"))));
    assert!(mtimes.iter().all(Option::is_some), "{mtimes:?}");
    // One total for the whole offer, however the client splits its fetches.
    let mut totals = std::collections::BTreeSet::new();
    ana.expect(SHORT, "completion", |event| match event {
        Event::TransferProgress { progress, .. } => {
            totals.insert(progress.bytes_total);
            None
        }
        Event::TransferStateChanged { state: TransferState::Completed, .. } => Some(()),
        _ => None,
    });
    assert_eq!(totals.into_iter().collect::<Vec<_>>(), [3013], "progress totals");
}

#[test]
fn an_ip_messenger_client_that_hangs_up_early_fails_the_transfer_and_never_completes_it() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let Meeting { mut client, mut ana, ana_ipmsg, .. } = meet(&net, &dirs.path().join("ana"), "Ana-cut", &[]);
    client.send(ana_ipmsg, mode::ANSENTRY, b"Zhang\0".to_vec());
    let zhang = ana.expect(SHORT, "Zhang", |event| match event {
        Event::PeerJoined { peer } if peer.client.is_some() => Some(peer.id),
        _ => None,
    });
    // A small file the kernel takes whole at once, and one that it cannot.
    for (name, size) in [("small.bin", 100_000usize), ("big.bin", 2 << 20)] {
        let path = dirs.path().join(name);
        std::fs::write(&path, vec![7u8; size]).unwrap();
        ana.send(&Command::SendFiles { to: vec![zhang], paths: vec![path], tag: None });
        let transfer = ana.expect(SHORT, "the transfer", |event| match event {
            Event::TransferAdded { transfer, .. } => Some(transfer.transfer_id),
            _ => None,
        });
        let offer = client.expect("the offer", |p| {
            (p.mode() == mode::SENDMSG && p.has(opt::FILEATTACHOPT)).then(|| p.clone())
        });
        client.send(ana_ipmsg, mode::RECVMSG, offer.packet_no.to_string().into_bytes());
        let file_id =
            attach::parse_attachments(offer.extra.splitn(2, |&b| b == 0).nth(1).unwrap()).unwrap()[0].file_id;
        // Reads 1,000 bytes and hangs up.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddrV4::new(net.ip(9), 0).into()).unwrap();
        socket.connect(&ana_ipmsg.into()).unwrap();
        let mut stream: std::net::TcpStream = socket.into();
        let request = Packet {
            version: FEIQ_VERSION.to_vec(),
            packet_no: 901,
            user: b"zhang".to_vec(),
            host: b"zhang-pc".to_vec(),
            command: 0x60,
            extra: format!("{:x}:{file_id:x}:0:", offer.packet_no).into_bytes(),
        };
        std::io::Write::write_all(&mut stream, &request.encode()).unwrap();
        let mut first = [0u8; 1000];
        std::io::Read::read_exact(&mut stream, &mut first).unwrap();
        drop(stream);
        let (state, reason) = ana.expect(SHORT, "the end of the transfer", |event| match event {
            Event::TransferStateChanged { transfer_id, state, reason }
                if *transfer_id == transfer && !state.is_live() =>
            {
                Some((*state, reason.clone()))
            }
            _ => None,
        });
        assert_eq!(state, TransferState::Failed, "{name}: {reason}");
        assert!(reason.contains("not received whole"), "{name}: {reason}");
    }
}

#[test]
fn an_ip_messenger_transfer_cut_by_a_crash_is_marked_failed_after_the_restart() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Accepts the fetch and then sends nothing: the transfer stays active.
    let listener = std::net::TcpListener::bind((net.ip(9), IPMSG_PORT)).unwrap();
    let Meeting { mut client, mut ana, ana_ipmsg, flags, .. } =
        meet(&net, &dirs.path().join("ana"), "Ana-crash", &[]);
    client.send(ana_ipmsg, mode::ANSENTRY, b"Zhang\0".to_vec());
    client.send(
        ana_ipmsg,
        mode::SENDMSG | opt::FILEATTACHOPT,
        b"\x0010000:big.bin:64:6b025dba:1:\x07".to_vec(),
    );
    let transfer = ana.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.transfer_id),
        _ => None,
    });
    ana.send(&Command::AcceptTransfer { transfer_id: transfer, always: false });
    let _held = accept_within(&listener).expect("Ana fetches");
    ana.kill();

    let mut ana = Daemon::start("Ana-crash2", &flags);
    ana.send(&Command::ListTransfers);
    let (state, reason) = ana.expect(SHORT, "the transfers", |event| match event {
        Event::Transfers { transfers } => {
            transfers.iter().find(|t| t.transfer_id == transfer).map(|t| (t.state, t.reason.clone()))
        }
        _ => None,
    });
    assert_eq!(state, TransferState::Failed, "{reason}");
    assert_eq!(
        pigeon::node::ending::Ending::of(&reason),
        pigeon::node::ending::Ending::StoppedHere,
        "{reason}"
    );
}
