public import Coordinator
import Dispatch
import Foundation
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus
import SweepAnalysis
import SweepStore
import Synchronization

/// The coordinator's HTTP status endpoint: `/status` (JSON), `/metrics` (Prometheus text),
/// `/` (a live page), `/figure.svg` and `/table` (from the database, cached a few seconds).
public enum StatusServer {
    /// An application serving `engine`'s status on host:port (port 0: any free port, reported to
    /// `onBound`). It is a Service: run it in the coordinator's ServiceGroup.
    public static func application(
        engine: CoordinatorEngine,
        registry: PrometheusCollectorRegistry,
        host: String,
        port: Int,
        logger: Logger,
        onBound: @escaping @Sendable (Int) -> Void
    ) -> some ApplicationProtocol {
        let router = Router()
        let views = DatabaseViews(path: engine.databasePath)
        router.get("/status") { request, _ -> Response in
            let page = request.uri.queryParameters.get("workers_page", as: Int.self) ?? 0
            guard let data = engine.statusJSON(workersPage: page) else {
                return Response(
                    status: .serviceUnavailable,
                    body: .init(byteBuffer: ByteBuffer(string: "{\"error\": \"the sweep is loading\"}"))
                )
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        router.get("/figure.svg") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "image/svg+xml"],
                body: .init(byteBuffer: ByteBuffer(string: await views.current().figure))
            )
        }
        router.get("/table") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await views.current().table))
            )
        }
        router.get("/") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: livePage))
            )
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "isosweep"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("status endpoint", metadata: ["url": "http://\(host):\(bound)/"])
                onBound(bound)
            },
            logger: logger
        )
    }

    /// The live page: polls /status every second, the figure and table every ten.
    static let livePage = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>isosweep: live</title>
        <style>body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
        #bar{background:#eee;height:18px;border-radius:4px;overflow:hidden}#fill{background:#4e79a7;height:100%;width:0}
        table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
        th{background:#f4f4f4}.failed{color:#b00}img{max-width:100%}
        .cellbar{display:inline-block;width:120px;height:10px;background:#eee;border-radius:3px;overflow:hidden;vertical-align:middle}
        .cellbar span{display:block;height:100%;background:#59a14f}.lipschitz span{background:#f28e2b}.wait{color:#8a5a00}</style></head>
        <body>
        <h1>isosweep <span id="sweep"></span></h1>
        <div id="bar"><div id="fill"></div></div>
        <p id="progress">waiting for the coordinator…</p>
        <h2>Workers</h2>
        <p id="workerstates"></p>
        <h3>Most cells done</h3>
        <table id="topworkers"><thead><tr><th>worker</th><th>host</th><th>running</th><th>done</th><th>last heartbeat</th></tr></thead><tbody></tbody></table>
        <h3>All workers <button id="prev" onclick="turn(-1)">&lsaquo;</button> <span id="page"></span> <button id="next" onclick="turn(1)">&rsaquo;</button></h3>
        <table id="workers"><thead><tr><th>worker</th><th>host</th><th>slots</th><th>cores used</th><th>memory used</th><th>BLAS kernels</th><th>running</th><th>done</th><th>last heartbeat</th></tr></thead><tbody></tbody></table>
        <h2>Running cells</h2>
        <table id="running"><thead><tr><th>cell</th><th>worker</th><th>n</th><th>d</th><th>width</th><th>seed</th><th>threads</th><th>phase</th><th>step</th><th>progress</th><th>train mse</th><th>seconds</th></tr></thead><tbody></tbody></table>
        <div id="waiting"></div>
        <div id="failures"></div>
        <h2>Lipschitz constant against p / (n d)</h2>
        <img id="figure" src="/figure.svg" alt="latest figure">
        <h2>Configurations</h2>
        <div id="table"></div>
        <script>
        function size(b){if(b>=1.8e19)return 'unstated';const u=['B','KiB','MiB','GiB','TiB'];let i=0;while(b>=1024&&i<4){b/=1024;i++;}return b.toFixed(i?1:0)+' '+u[i];}
        function text(s){return String(s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
        let page=0, pages=1;
        function turn(by){page=Math.min(Math.max(0,page+by),pages-1);refresh();}
        async function refresh(){
          try{
            const s=await (await fetch('/status?workers_page='+page,{cache:'no-store'})).json();
            const total=s.workers_total??s.workers.length, st=s.worker_states||{};
            pages=Math.max(1,Math.ceil(total/50)); page=s.workers_page||0;
            document.getElementById('workerstates').textContent=total+' workers: '+(st.busy||0)+' busy, '+(st.idle||0)+' idle, '+(st.silent||0)+' silent';
            document.getElementById('page').textContent='page '+(page+1)+' of '+pages;
            document.querySelector('#topworkers tbody').innerHTML=(s.top_workers||[]).map(w=>'<tr><td class="top">'+text(w.id)+'</td><td>'+text(w.host)+
              '</td><td>'+w.leased+'</td><td>'+w.done+'</td><td>'+w.last_heartbeat_ms_ago+' ms ago</td></tr>').join('');
            const done=s.counts.done||0, failed=s.counts.failed||0;
            document.getElementById('sweep').textContent=s.sweep;
            document.getElementById('fill').style.width=(100*(done+failed)/Math.max(1,s.total))+'%';
            const eta=s.eta_seconds==null?'-':Math.round(s.eta_seconds)+' s';
            document.getElementById('progress').textContent='cells '+done+'/'+s.total+' done, '+failed+' failed, '+(s.counts.leased||0)+' running, '+
              s.cells_per_second.toFixed(2)+' cells/s, ETA '+eta+', workers '+total+(s.finished?' (finished)':'');
            document.querySelector('#workers tbody').innerHTML=s.workers.map(w=>'<tr><td class="worker">'+text(w.id)+'</td><td>'+text(w.host)+'</td><td>'+w.slots+
              '</td><td>'+w.threads_in_use+' / '+w.cores+'</td><td>'+size(w.memory_in_use_bytes)+' / '+size(w.memory_bytes)+
              '</td><td class="blas">'+text(w.blas_core??'')+'</td><td>'+w.leased+'</td><td>'+w.done+'</td><td>'+w.last_heartbeat_ms_ago+' ms ago</td></tr>').join('');
            document.querySelector('#running tbody').innerHTML=(s.running||[]).map(r=>{
              const share=r.phase=='lipschitz'?1:(r.max_steps?Math.min(1,r.step/r.max_steps):0);
              return '<tr class="cell"><td>'+text(r.key.slice(0,12))+'</td><td>'+text(r.worker)+'</td><td>'+(r.n??'')+'</td><td>'+(r.d??'')+
                '</td><td>'+(r.width??'')+'</td><td>'+(r.seed??'')+'</td><td>'+r.threads+'</td><td class="phase">'+text(r.phase)+
                '</td><td class="step">'+(r.step==null?'':r.step+' / '+r.max_steps)+(r.resumed_from_step==null?'':' (resumed from '+r.resumed_from_step+')')+'</td><td><span class="cellbar '+text(r.phase)+
                '"><span style="width:'+(100*share).toFixed(1)+'%"></span></span></td><td>'+(r.train_mse==null?'':r.train_mse.toPrecision(3))+
                '</td><td>'+r.seconds.toFixed(1)+'</td></tr>';}).join('');
            document.getElementById('waiting').innerHTML=s.waiting_count?'<h2 class="wait">Waiting for a worker that can hold them ('+
              s.waiting_count+')</h2>'+s.waiting.map(w=>'<p class="wait">'+text(w.key.slice(0,12))+': '+text(w.reason)+'</p>').join(''):'';
            document.getElementById('failures').innerHTML=s.failures.length?'<h2 class="failed">Failures</h2>'+s.failures.map(f=>'<p class="failed">'+
              text(f.key.slice(0,12))+' after '+f.attempts+' attempts: '+text(f.error)+'</p>').join(''):'';
          }catch(e){document.getElementById('progress').textContent='coordinator unreachable: '+e;}
        }
        async function refreshSlow(){
          document.getElementById('figure').src='/figure.svg?t='+Date.now();
          try{document.getElementById('table').innerHTML=await (await fetch('/table',{cache:'no-store'})).text();}catch(e){}
        }
        refresh();refreshSlow();setInterval(refresh,1000);setInterval(refreshSlow,10000);
        </script>
        </body></html>
        """
}

/// The figure and table from the database, recomputed at most every five seconds, one
/// recomputation at a time and off the cooperative pool (it reads SQLite).
final class DatabaseViews: Sendable {
    let path: String
    private let queue = DispatchQueue(label: "isosweep.status.views")
    private let cache = Mutex<(at: ContinuousClock.Instant, figure: String, table: String)?>(nil)

    init(path: String) { self.path = path }

    func current() async -> (figure: String, table: String) {
        if let cached = cache.withLock({ $0 }), ContinuousClock.now - cached.at < .seconds(5) {
            return (cached.figure, cached.table)
        }
        return
            (try? await blockingWork(on: queue) { [self] () -> (figure: String, table: String) in
                // A caller that waited for the one before it finds its views fresh.
                if let cached = cache.withLock({ $0 }), ContinuousClock.now - cached.at < .seconds(5) {
                    return (cached.figure, cached.table)
                }
                let views = Self.compute(path: path)
                cache.withLock { $0 = (.now, views.figure, views.table) }
                return views
            }) ?? Self.empty
    }

    static let empty = (
        figure:
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"10\" y=\"25\">no results yet</text></svg>",
        table: "<p>no results yet</p>"
    )

    static func compute(path: String) -> (figure: String, table: String) {
        var (figure, table) = empty
        if let store = try? ResultStore(path: path, readOnly: true), let rows = try? SweepTable(store: store),
            !rows.results.isEmpty
        {
            let analysis = ScalingAnalysis(results: rows.results)
            if let chart = analysis.figures().first?.chart { figure = chart.svg() }
            let configurations = analysis.configurationTable()
            table = TextTable.html(header: configurations.header, rows: configurations.rows)
        }
        return (figure, table)
    }
}
