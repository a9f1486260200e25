import Foundation
import Testing

/// The report of a real sweep, opened in a real browser: every figure loads as an image.
@Suite struct ReportBrowserTests {
    @Test(.enabled(if: LiveStatusTests.tool("chromium") != nil, "needs Debian's chromium"))
    func everyFigureOfARealSweepRendersInChromium() throws {
        let box = try Sandbox()
        let spec = try box.sweep("browse", n: 32, seeds: [0, 1], widths: [2, 8, 32], steps: 400)
        let run = try runIsosweep(["run", spec, "--db", box.path("browse.db"), "--workers", "2"], timeout: 300)
        #expect(run.status == 0, "\(run.stderr)")
        let report = box.path("browse-report")
        let markdown = try String(contentsOfFile: report + "/report.md", encoding: .utf8)
        // The baselines and the law read as a lower bound.
        let header = try #require(markdown.split(separator: "\n").first { $0.hasPrefix("| n ") })
        #expect(header.contains("| lip_init_support_lower |") && header.contains("| interp_floor "))
        #expect(markdown.contains("interpolation floor") && markdown.contains("law_ratio"))
        #expect(!markdown.contains("violates") && !markdown.contains("follows the law"))
        let figures = ["law-ratio", "lipschitz", "eps"]
        for figure in figures {
            let svg = try String(contentsOfFile: report + "/\(figure).svg", encoding: .utf8)
            #expect(svg.hasPrefix("<svg"))
        }
        #expect(
            try String(contentsOfFile: report + "/lipschitz.svg", encoding: .utf8).contains(">interpolation floor<")
        )
        // A page that loads each figure as an image and writes what the browser made of it.
        let names = "[" + figures.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        let harness = """
            <!DOCTYPE html><html><body><script>
            const names = \(names); const seen = []; let left = names.length;
            for (const name of names) {
              const image = new Image();
              image.onload = () => { seen.push(name + ":" + image.naturalWidth + "x" + image.naturalHeight); finish(); };
              image.onerror = () => { seen.push(name + ":error"); finish(); };
              image.src = "browse-report/" + name + ".svg";
            }
            function finish() { if (--left === 0) document.body.setAttribute("data-figures", seen.sort().join(",")); }
            </script></body></html>
            """
        try harness.write(toFile: box.path("harness.html"), atomically: true, encoding: .utf8)
        let chromium = LiveStatusTests.tool("chromium")!
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ]
        let dom = try Spawned(
            [],
            name: "chromium-figures",
            directory: box.directory,
            launcher: [chromium] + flags + ["--dump-dom", "file://" + box.path("harness.html")],
            isosweep: false
        )
        _ = try? dom.wait(timeout: 90)
        let expected = figures.sorted().map { "\($0):830x500" }.joined(separator: ",")
        #expect(
            dom.stdout.contains("data-figures=\"\(expected)\""),
            "\(dom.stdout.prefix(2000)) \(dom.stderr.suffix(500))"
        )
        // And the report page itself, with its tables and figures.
        let page = try Spawned(
            [],
            name: "chromium-report",
            directory: box.directory,
            launcher: [chromium] + flags + ["--dump-dom", "file://" + report + "/index.html"],
            isosweep: false
        )
        _ = try? page.wait(timeout: 90)
        for figure in figures { #expect(page.stdout.contains("<img src=\"\(figure).svg\"")) }
        #expect(page.stdout.contains("<th>interp_floor</th>"))
    }
}
