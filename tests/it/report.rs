//! `mxsim report`: the HTML page and its timelines. The page's structure is checked as text
//! (cells, links, escaping, determinism, reproduce commands that reproduce), the timeline of one
//! seed scenario is pinned by insta, and, when `MXSIM_BROWSER_TESTS=1` (`.ci/run` sets it and
//! installs Chromium), a real headless Chromium loads the page from a file: the DOM it builds
//! is asserted on, and its screenshot must not be blank.

use std::path::{Path, PathBuf};
use std::process::Command;

use mxsim_cli::{EXIT_BAD_INPUT, EXIT_OK, Output, main_with};
use mxsim_lab::report::{self, Page, timeline};
use mxsim_lab::spec::PolicySpec;
use mxsim_tests::{load, root};

fn mxsim(arguments: &[&str]) -> Output {
    main_with(
        std::iter::once("mxsim")
            .chain(arguments.iter().copied())
            .map(Into::into),
    )
}

fn fresh(name: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("the target tmp dir is writable");
    folder
}

/// The page of `files` (relative to the root) × `policies`, built by the lab.
fn page(files: &[&str], policies: &[&str]) -> Page {
    let loaded: Vec<_> = files
        .iter()
        .map(|file| {
            let path = PathBuf::from(file);
            let scenario = load(&root().join(file));
            (path, scenario)
        })
        .collect();
    let specs: Vec<PolicySpec> = policies
        .iter()
        .map(|name| PolicySpec::Named((*name).to_owned()))
        .collect();
    report::build(&loaded, &specs)
}

fn seed_files() -> Vec<String> {
    mxsim_cli::files::collect(&[root().join("scenarios/seed")])
        .expect("scenarios/seed exists")
        .files
        .iter()
        .map(|path| {
            path.strip_prefix(root())
                .expect("under the root")
                .display()
                .to_string()
        })
        .collect()
}

/// Every value of `attribute="…"` in `html`.
fn attribute_values<'h>(html: &'h str, attribute: &str) -> Vec<&'h str> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The timeline of the seed's base case under the baseline, pinned: lanes, spans, ticks, order.
#[test]
fn base_case_timeline_is_pinned() {
    let page = page(&["scenarios/seed/base-case.yaml"], &["rfc5321"]);
    let svg = timeline::svg(&page.shown[0][0].trace);
    insta::assert_snapshot!("base_case_rfc5321_timeline", svg);
}

/// A queue run over two hours: attempt markers, and gaps where virtual time passes.
#[test]
fn queued_wanted_keyword_timeline_is_pinned() {
    let page = page(
        &["scenarios/seed/queued-wanted-keyword.yaml"],
        &["same-preference"],
    );
    let svg = timeline::svg(&page.shown[0][0].trace);
    assert_eq!(
        svg.matches("<line class=\"att\"").count(),
        5,
        "five attempts"
    );
    assert!(svg.contains(">+30m</text>"), "the retry waits are drawn");
    insta::assert_snapshot!("queued_wanted_keyword_same_preference_timeline", svg);
}

/// Over the corpus, the baseline's timelines draw every way a connection can end.
#[test]
fn the_corpus_draws_every_ending() {
    let files: Vec<String> = mxsim_tests::scenario_files()
        .iter()
        .map(|path| {
            path.strip_prefix(root())
                .expect("under the root")
                .display()
                .to_string()
        })
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let page = page(&files, &["rfc5321"]);
    let html = report::html(&page);
    for ending in timeline::Ending::ALL {
        assert!(
            html.contains(&format!("<g class=\"{}\">", ending.class())),
            "no span ends as {}",
            ending.label()
        );
    }
}

/// The page has a cell per scenario and policy, each coloured by its verdict and linked to a
/// block that exists; every internal link has its target; no text is left unescaped.
#[test]
fn every_cell_is_coloured_and_opens_its_run() {
    let files = seed_files();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let policies = ["rfc5321", "klensin-strict", "postfix-3.11", "exim-4"];
    let page = page(&files, &policies);
    let html = report::html(&page);
    let cells = files.len() * policies.len();
    assert_eq!(html.matches("<td class=\"v-").count(), cells);
    assert_eq!(html.matches("<div class=\"cell v-").count(), cells);
    assert_eq!(html.matches("<details class=\"scn\"").count(), files.len());
    let ids: std::collections::BTreeSet<&str> = attribute_values(&html, "id").into_iter().collect();
    for href in attribute_values(&html, "href") {
        let target = href
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a link leaves the page: {href}"));
        assert!(ids.contains(target), "no element has id {target}");
    }
    // Self-contained: nothing is fetched.
    for pattern in ["src=", "http://", "https://", "<link", "@import", "url("] {
        let found = html
            .match_indices(pattern)
            .map(|(at, _)| &html[at..(at + 60).min(html.len())])
            .find(|context| !context.starts_with("http://www.w3.org/2000/svg"));
        assert!(found.is_none(), "the page refers outside: {found:?}");
    }
    // The seed's backup-after-ehlo-mail-4yz: the baseline and exim-4 go to the backup, the strict
    // reading and Postfix do not; the row is marked as differing.
    let row = page
        .compare
        .scenarios
        .iter()
        .position(|row| row.label == "seed/backup-after-ehlo-mail-4yz")
        .expect("the seed scenario is there");
    assert!(html.contains(&format!("<tr id=\"m{row}\" class=\"differs\">")));
}

/// Each cell's reproduce command prints the very trace the page shows.
#[test]
fn reproduce_commands_reproduce_the_shown_run() {
    let files = seed_files();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let policies = [
        "rfc5321",
        "same-preference",
        "postfix-3.10",
        "first-mx-only",
    ];
    let page = page(&files, &policies);
    let mut flagged = 0;
    for (row, shown) in page.compare.scenarios.iter().zip(&page.shown) {
        for (cell, shown) in row.cells.iter().zip(shown) {
            let file = root().join(&row.file);
            let file = file.to_str().expect("UTF-8 path");
            let mut arguments = vec!["run", file, "--policy", cell.policy.as_str()];
            if let Some(seed) = shown.label.strip_prefix("seed ") {
                arguments.extend(["--seed", seed]);
            } else if let Some(order) = shown.label.strip_prefix("order ") {
                arguments.extend(["--order", order]);
            }
            if arguments.len() > 4 {
                flagged += 1;
            }
            let output = mxsim(&arguments);
            assert!(
                output.stdout.contains(&shown.trace.to_string()),
                "{arguments:?} does not print the trace the page shows:\n{}",
                output.stdout
            );
        }
    }
    assert!(flagged > 0, "some cell needs --order or --seed");
}

/// The same inputs give the same bytes, and text from a scenario file reaches the page escaped.
#[test]
fn the_page_is_deterministic_and_escapes_scenario_text() {
    let folder = fresh("report-hostile");
    std::fs::write(
        folder.join("hostile.yaml"),
        "# A title and a reply text written to break out of HTML.\n# The page must show them as text.\n\
         title: \"<script>alert('title')</script> & \\\"q\\\"\"\n\
         message: {to: [u@foo.example]}\n\
         dns: {foo.example: {mx: [10 mx.foo.example]}}\n\
         servers: {mx.foo.example: {rcpt: \"550 5.1.1 <img src=x onerror=alert(1)></pre>\"}}\n\
         expect: {rfc5321: {outcome: bounced}}\n",
    )
    .expect("writable");
    let scenario = folder.join("hostile.yaml");
    let scenario = scenario.to_str().expect("UTF-8 path");
    let first = folder.join("one");
    let second = folder.join("two");
    for out in [&first, &second] {
        let output = mxsim(&[
            "report",
            scenario,
            "--policy",
            "rfc5321",
            "--policy",
            "exim-4",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ]);
        assert_eq!(output.code, EXIT_OK, "{}{}", output.stdout, output.stderr);
        assert!(output.stdout.contains("1 scenarios × 2 policies, 2 cells"));
    }
    let html = std::fs::read_to_string(first.join("index.html")).expect("written");
    assert_eq!(
        html,
        std::fs::read_to_string(second.join("index.html")).expect("written"),
        "two reports of the same inputs differ"
    );
    assert!(
        !html.contains("<script>alert"),
        "a title reached the page raw"
    );
    assert!(!html.contains("<img"), "a reply text reached the page raw");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
    );
    assert!(html.contains("550 5.1.1 &lt;img src=x onerror=alert(1)&gt;&lt;/pre&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
}

#[test]
fn report_needs_a_folder_and_good_input() {
    let output = mxsim(&["report", "scenarios/seed"]);
    assert_eq!(output.code, EXIT_BAD_INPUT);
    assert!(output.stderr.contains("--out"), "{}", output.stderr);
    let folder = fresh("report-bad");
    let output = mxsim(&[
        "report",
        "--policy",
        "no-such-policy",
        "--out",
        folder.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(output.code, EXIT_BAD_INPUT, "{}", output.stderr);
    assert!(!folder.join("index.html").exists());
}

/// Chromium's flags for a test: headless, no network services, a profile of its own.
fn chromium(profile: &Path) -> Command {
    let binary = std::env::var("MXSIM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    // A hung browser must not hang the test run: coreutils' timeout ends it (the test itself
    // reads no clock).
    let mut command = Command::new("timeout");
    command.args(["120", &binary]).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

fn run_browser(mut command: Command) -> Vec<u8> {
    let output = command.output().expect("chromium starts");
    assert!(
        output.status.success(),
        "chromium failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A real browser loads the page from a file, builds the matrix, the cells and the timelines,
/// opens a cell's section when the address names it, and paints something.
#[test]
fn chromium_loads_the_page() {
    if std::env::var("MXSIM_BROWSER_TESTS").as_deref() != Ok("1") {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "chromium_loads_the_page: skipped; set MXSIM_BROWSER_TESTS=1 (with Chromium \
                 installed) to run it, as .ci/run does"
            );
        }
        return;
    }
    let folder = fresh("report-browser");
    let out = folder.join("out");
    let mut arguments = vec!["report".to_owned()];
    arguments.extend(
        seed_files()
            .iter()
            .map(|file| root().join(file).display().to_string()),
    );
    arguments.push(
        root()
            .join("scenarios/queue/seed-queued-required-keyword.yaml")
            .display()
            .to_string(),
    );
    for policy in ["rfc5321", "same-preference", "postfix-3.11", "exim-4"] {
        arguments.extend(["--policy".to_owned(), policy.to_owned()]);
    }
    arguments.extend(["--out".to_owned(), out.display().to_string()]);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let output = mxsim(&arguments);
    assert_eq!(output.code, EXIT_OK, "{}{}", output.stdout, output.stderr);
    let scenarios = seed_files().len() + 1;
    let index = out.join("index.html");
    let url = format!("file://{}", index.display());
    let profile = folder.join("profile");

    // The DOM Chromium built, after its parser and the page's script ran.
    let mut command = chromium(&profile);
    command.arg("--dump-dom").arg(&url);
    let dom = String::from_utf8(run_browser(command)).expect("the DOM is UTF-8");
    assert!(
        dom.contains("<table class=\"matrix\""),
        "no matrix:\n{dom:.2000}"
    );
    assert!(
        dom.contains("<colgroup>"),
        "the matrix lost its fixed layout"
    );
    assert_eq!(dom.matches("<td class=\"v-").count(), scenarios * 4);
    for class in ["v-pass", "v-departs"] {
        assert!(dom.contains(&format!("class=\"{class}")), "no {class} cell");
    }
    assert!(
        dom.contains("class=\"differs\""),
        "no row marked as differing"
    );
    assert!(dom.matches("<svg class=\"tl\"").count() >= scenarios);
    assert!(dom.contains("<pre class=\"trace\""));
    assert!(dom.contains("mxsim run "), "no reproduce command");
    assert!(
        !dom.contains(" open=\"\""),
        "a scenario is open before any cell is chosen"
    );

    // Following a cell's link opens its scenario's section.
    let mut command = chromium(&profile);
    command.arg("--dump-dom").arg(format!("{url}#c2-1"));
    let dom = String::from_utf8(run_browser(command)).expect("the DOM is UTF-8");
    assert!(
        dom.contains("<details class=\"scn\" id=\"s2\" open=\"\">"),
        "the cell's section did not open"
    );

    // A screenshot of the top of the page: the header and the coloured matrix.
    let png = folder.join("page.png");
    let mut command = chromium(&profile);
    command
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(&url);
    run_browser(command);
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut buffer).expect("one frame");
    assert_eq!((frame.width, frame.height), (1200, 900));
    let channels = frame.color_type.samples();
    let pixels: Vec<&[u8]> = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .collect();
    let white = pixels
        .iter()
        .filter(|pixel| pixel[..3].iter().all(|&value| value >= 250))
        .count();
    let colours: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    assert!(
        colours.len() >= 16,
        "the screenshot is blank: {} colours",
        colours.len()
    );
    assert!(
        white * 10 < pixels.len() * 9,
        "the screenshot is almost all white: {white} of {} pixels",
        pixels.len()
    );
}
