"""The page's own CSS and JavaScript (no library but plotly.js, which page.render embeds)."""

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
  max-width: 1280px; padding: 0 20px 40px; color: #222; line-height: 1.45; }
header h1 { font-size: 1.5em; margin: 18px 0 6px; }
header p, header li { max-width: 100ch; }
h3 { margin: 4px 0 0; font-size: 1.05em; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.gl-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 14px 22px; }
.gl-panel, .gl-html { min-width: 0; }
.gl-panel.wide, .gl-html.wide, .gl-controls { grid-column: 1 / -1; }
.gl-caption { margin: 2px 0 4px; color: #555; font-size: 0.92em; }
.gl-controls { position: sticky; top: 0; z-index: 10; background: #fafafa; border: 1px solid #ddd;
  border-radius: 6px; padding: 8px 12px; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; }
.gl-slider { flex: 1 1 320px; }
.gl-label { font-variant-numeric: tabular-nums; min-width: 9em; font-weight: 600; }
.gl-note { flex-basis: 100%; color: #555; font-size: 0.88em; }
.gl-play { font-size: 0.95em; padding: 3px 10px; cursor: pointer; }
table.gl-table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0; }
table.gl-table th, table.gl-table td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; }
table.gl-table th { background: #f6f6f6; }
table.gl-table td.l, table.gl-table th.l { text-align: left; }
.gl-words { background: #f6f9fc; border-left: 4px solid #1f77b4; padding: 6px 12px; margin: 6px 0; }
.gl-skip { color: #8a6d00; background: #fff8e1; padding: 6px 12px; border-radius: 4px; }
footer { margin-top: 28px; color: #777; font-size: 0.85em; }
"""

JS = r"""
var GL = (function () {
  "use strict";
  function f32(s) {
    var bin = atob(s), u8 = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new Float32Array(u8.buffer);
  }
  function list(a) {
    var out = new Array(a.length);
    for (var i = 0; i < a.length; i++) out[i] = isFinite(a[i]) ? a[i] : null;
    return out;
  }
  function fig(id) { var el = document.getElementById(id); return el && el.data ? el : null; }

  function controls(spec) {
    var root = document.getElementById(spec.id);
    var slider = root.querySelector(".gl-slider"), label = root.querySelector(".gl-label");
    var play = root.querySelector(".gl-play"), pick = root.querySelector(".gl-member");
    var last = spec.labels.length - 1, member = 0, timer = null;
    spec.targets.forEach(function (t) { if (t.data) t.buf = f32(t.data); });
    function chunk(t, k, n) { var off = (member * t.frames + k) * n; return t.buf.subarray(off, off + n); }
    function frame() {
      var k = +slider.value;
      label.textContent = spec.labels[k];
      spec.targets.forEach(function (t) {
        var el = fig(t.div);
        if (!el) return;
        if (t.kind === "z") {
          var v = chunk(t, k, t.rows * t.cols), z = [], m = 0;
          for (var r = 0; r < t.rows; r++) z.push(list(v.subarray(r * t.cols, (r + 1) * t.cols)));
          var upd = {z: [z]};
          if (t.symmetric) {
            for (var i = 0; i < v.length; i++) if (Math.abs(v[i]) > m) m = Math.abs(v[i]);
            m = m || 1; upd.zmin = [-m]; upd.zmax = [m];
          }
          Plotly.restyle(el, upd, [t.trace]);
        } else if (t.kind === "y") {
          Plotly.restyle(el, {y: [list(chunk(t, k, t.n))]}, [t.trace]);
        } else if (t.kind === "vline") {
          Plotly.restyle(el, {x: [[t.x[k], t.x[k]]]}, [t.trace]);
        }
      });
    }
    function pickMember() {
      spec.targets.forEach(function (t) {
        if (t.kind === "html") {
          var e = document.getElementById(t.div);
          if (e) e.innerHTML = t.html[member];
        } else if (t.kind === "member") {
          var el = fig(t.div), xy = t.xy[member];
          if (el) Plotly.restyle(el, {x: xy.map(function (p) { return p[0]; }),
                                      y: xy.map(function (p) { return p[1]; })}, t.traces);
        }
      });
      frame();
    }
    function stop() { clearInterval(timer); timer = null; play.textContent = "\u25B6 play"; }
    play.addEventListener("click", function () {
      if (timer) { stop(); return; }
      if (+slider.value >= last) slider.value = 0;
      play.textContent = "\u275A\u275A pause";
      frame();
      timer = setInterval(function () {
        if (+slider.value >= last) { stop(); return; }
        slider.value = +slider.value + 1;
        frame();
      }, 600);
    });
    slider.addEventListener("input", frame);
    if (pick) pick.addEventListener("change", function () { member = +pick.value; pickMember(); });
    pickMember();
  }

  function drilldown(spec) {
    var src = fig(spec.src), dst = fig(spec.dst);
    if (!src || !dst) return;
    src.on("plotly_click", function (ev) {
      var p = ev.points && ev.points[0], cd = p && p.customdata;
      var view = spec.views[Array.isArray(cd) ? cd[0] : cd];
      if (!view) return;
      var layout = JSON.parse(JSON.stringify(spec.layout));
      layout.title = {text: view.title, x: 0, xanchor: "left", font: {size: 13}};
      Plotly.react(dst, view.data, layout);
      if (spec.note) document.getElementById(spec.note).textContent = view.title;
    });
  }
  return {f32: f32, controls: controls, drilldown: drilldown};
})();
"""
