//! `recipe data fetch` against an HTTP server on 127.0.0.1 started by the
//! test (the machines that run the tests reach no real mirror): good files,
//! a corrupted file, and a connection dropped in the middle of a file.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

fn vendored(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/mnist")
        .join(name)
}

/// Serves `/good/<file>` (recipe's vendored MNIST), `/corrupt/<file>` (the
/// same with bytes changed in the middle) and `/drop/<file>` (announces the
/// whole length, sends half, hangs up). Returns the base URL.
fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    format!("http://{address}")
}

fn serve(mut stream: TcpStream) {
    let mut request_line = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (mode, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !FILES.contains(&name) {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let mut body = fs::read(vendored(name)).unwrap();
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    match mode {
        "good" => {
            let _ = stream.write_all(&body);
        }
        "corrupt" => {
            let middle = body.len() / 2;
            for byte in &mut body[middle..middle + 16] {
                *byte ^= 0x5a;
            }
            let _ = stream.write_all(&body);
        }
        "drop" => {
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        _ => {}
    }
}

fn fetch(dir: &Path, mirrors: &[String]) -> Output {
    let mut command = common::recipe();
    command.args(["data", "fetch", "mnist", "--dir"]).arg(dir);
    for mirror in mirrors {
        command.args(["--mirror", mirror]);
    }
    command.output().expect("the recipe binary runs")
}

fn fresh_dir(name: &str) -> PathBuf {
    common::fresh_dir(&format!("fetch-{name}"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Fetching from the test server's `route` alone fails with exit status 2,
/// names the file and `needle`, and leaves nothing behind.
fn assert_mirror_refused(route: &str, needle: &str) {
    let server = start_server();
    let dir = fresh_dir(route);
    let output = fetch(&dir, &[format!("{server}/{route}/")]);
    common::assert_refused(&output, needle);
    common::assert_refused(&output, "train-images-idx3-ubyte.gz");
    assert!(
        listing(&dir).is_empty(),
        "a refused download must leave nothing behind: {:?}",
        listing(&dir)
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupted_file_is_refused_and_deleted() {
    assert_mirror_refused("corrupt", "checksum mismatch");
}

#[test]
fn a_dropped_connection_is_an_error_and_leaves_nothing() {
    assert_mirror_refused("drop", "/drop/train-images-idx3-ubyte.gz");
}

#[test]
fn the_next_mirror_is_tried_and_good_files_are_kept() {
    let server = start_server();
    let dir = fresh_dir("good");
    // A file already there with the wrong contents is replaced.
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), b"not mnist").unwrap();
    let mirrors = [
        format!("{server}/drop/"),
        format!("{server}/missing/"),
        format!("{server}/corrupt/"),
        format!("{server}/good/"),
    ];
    let output = fetch(&dir, &mirrors);
    let stdout = common::assert_success(&output);
    assert!(stdout.contains("60000 training images"), "{stdout}");
    assert_eq!(listing(&dir), {
        let mut names = FILES.map(String::from).to_vec();
        names.sort();
        names
    });
    for name in FILES {
        assert_eq!(
            fs::read(dir.join(name)).unwrap(),
            fs::read(vendored(name)).unwrap(),
            "{name}"
        );
        assert!(
            stdout.contains(&format!("{server}/good/{name}")),
            "{stdout}"
        );
    }

    // Everything is there: no mirror is needed (port 9 on 127.0.0.1 refuses).
    let again = fetch(&dir, &["http://127.0.0.1:9/".to_string()]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert_eq!(stdout.matches("already there").count(), 4, "{stdout}");
    fs::remove_dir_all(dir).unwrap();
}
