//! An SMTP sink on loopback for the tests: a real SMTP server (RFC 5321: EHLO/HELO, MAIL, RCPT,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT) that keeps every message instead of relaying it.
//! It can be told to refuse messages after their DATA (554), like a server that rejects mail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Whether the sink accepted it (250) or refused it (554).
    pub accepted: bool,
}

impl Delivery {
    /// The parsed message.
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(self.data.as_bytes()).expect("a MIME message")
    }

    /// A header of the message, decoded.
    pub fn header(&self, name: &str) -> String {
        use mailparse::MailHeaderMap as _;
        self.parsed().headers.get_first_value(name).unwrap_or_default()
    }

    /// The decoded body of the part with `mime_type` (`text/plain`, `text/html`).
    pub fn body(&self, mime_type: &str) -> String {
        fn find(part: &mailparse::ParsedMail<'_>, mime_type: &str) -> Option<String> {
            if part.subparts.is_empty() {
                return (part.ctype.mimetype == mime_type).then(|| part.get_body().expect("decodable body"));
            }
            part.subparts.iter().find_map(|p| find(p, mime_type))
        }
        find(&self.parsed(), mime_type).unwrap_or_else(|| panic!("no {mime_type} part"))
    }
}

/// A running sink.
#[derive(Clone)]
pub struct SmtpSink {
    /// `smtp://127.0.0.1:PORT` (plain SMTP, for `AUTH_SMTP_URL`).
    pub url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    refuse: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let sink = Self { url, deliveries: Arc::default(), refuse: Arc::default() };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().session(stream));
            }
        });
        sink
    }

    /// From now on, refuse (true) or accept (false) messages after their DATA.
    pub fn refuse_messages(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Every message received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The messages received for `to`.
    pub fn to(&self, to: &str) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| d.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to))).collect()
    }

    /// The messages received for `to` once there are at least `count`, waiting up to 5 s: mail to
    /// existing accounts is sent in the background, after the HTTP answer. Panics if they do not
    /// arrive.
    pub async fn wait_for(&self, to: &str, count: usize) -> Vec<Delivery> {
        let arrived = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let mails = self.to(to);
                if mails.len() >= count {
                    return mails;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        arrived.unwrap_or_else(|_| panic!("expected {count} mail(s) to {to}, got {}", self.to(to).len()))
    }

    async fn session(self, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(b"220 sink.test ESMTP ready\r\n").await.is_err() {
            return;
        }
        let (mut from, mut rcpt) = (String::new(), Vec::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let answer: String = if upper.starts_with("EHLO") {
                "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            } else if upper.starts_with("HELO") {
                "250 sink.test\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&line["MAIL FROM:".len()..]);
                rcpt.clear();
                "250 2.1.0 OK\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(address(&line["RCPT TO:".len()..]));
                "250 2.1.5 OK\r\n".into()
            } else if upper == "DATA" {
                if write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                let accepted = !self.refuse.load(Ordering::SeqCst);
                self.deliveries.lock().unwrap().push(Delivery {
                    mail_from: from.clone(),
                    rcpt_to: std::mem::take(&mut rcpt),
                    data,
                    accepted,
                });
                if accepted {
                    "250 2.0.0 queued\r\n".into()
                } else {
                    "554 5.7.1 message refused\r\n".into()
                }
            } else if upper == "RSET" {
                rcpt.clear();
                "250 OK\r\n".into()
            } else if upper == "NOOP" {
                "250 OK\r\n".into()
            } else if upper == "QUIT" {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                "502 5.5.2 command not implemented\r\n".into()
            };
            if write.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// `<a@b> SIZE=…` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg.strip_prefix('<').and_then(|a| a.split_once('>')).map_or(arg, |(a, _)| a);
    inner.split_whitespace().next().unwrap_or_default().to_owned()
}
