package demo

import (
	"bytes"
	"html/template"
	"net/http"
)

// pages holds every page, parsed once; each page defines "content" via
// its own template set sharing the layout.
var pages = func() map[string]*template.Template {
	m := make(map[string]*template.Template)
	for name, body := range map[string]string{
		"dashboard": dashboardHTML,
		"settings":  settingsHTML,
		"console":   consoleHTML,
		"notfound":  notFoundHTML,
	} {
		m[name] = template.Must(template.Must(template.New("layout").Parse(layoutHTML)).Parse(body))
	}
	return m
}()

// render writes a page to a buffer first, then status and body.
func (p *panel) render(w http.ResponseWriter, status int, page string, d pageData) {
	d.Panel = p.name
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		p.log.Error().Err(err).Str("page", page).Msg("demo: render failed")
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

const layoutHTML = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{{.Title}} - {{.Panel}}</title>
<style>
body{margin:0;background:#d4d0c8;font:12px Verdana,Tahoma,Arial,sans-serif;color:#000}
#top{background:linear-gradient(#0a246a,#3a6ea5);color:#fff;padding:6px 10px;border-bottom:2px solid #000}
#top b{font-size:15px;letter-spacing:1px}
#top .who{float:right}
#wrap{display:flex}
#nav{width:160px;background:#ece9d8;border-right:2px groove #fff;min-height:480px;padding:8px 0}
#nav a{display:block;padding:4px 12px;color:#0000c0;text-decoration:none}
#nav a.on{background:#316ac5;color:#fff;font-weight:bold}
#nav a:hover{text-decoration:underline}
#main{flex:1;padding:12px 16px}
h1{font-size:16px;margin:0 0 10px;border-bottom:1px solid #808080}
fieldset{border:2px groove #fff;margin:0 0 12px;background:#ece9d8}
table.grid{border-collapse:collapse;width:100%;background:#fff}
table.grid th,table.grid td{border:1px solid #808080;padding:2px 6px;text-align:left;vertical-align:top}
table.grid th{background:#c0c0c0}
table.grid td.v{font-family:"Courier New",monospace;word-break:break-all}
tr.id td{background:#ffffcc;font-weight:bold}
.notice{background:#ffffe1;border:1px solid #000;padding:6px;margin-bottom:10px}
.notice.ok{background:#e1ffe1}
button,input[type=submit]{background:#d4d0c8;border:2px outset #fff;padding:2px 10px;font:inherit}
input[type=text],input[type=email],select{font:inherit;border:2px inset #fff;padding:1px 3px;width:240px}
label{display:inline-block;width:140px}
#log{background:#000;color:#0f0;font-family:"Courier New",monospace;height:220px;overflow:auto;padding:4px;white-space:pre-wrap}
#foot{clear:both;color:#404040;font-size:10px;padding:6px 10px;border-top:1px solid #808080}
</style>
</head>
<body>
<div id="top"><span class="who">{{if .User}}Signed in as <b id="user">{{.User}}</b>{{else}}<i id="user-none">Not signed in (no identity header)</i>{{end}}</span><b>{{.Panel}}</b> &middot; v2.3.1 build 2009-04-17</div>
<div id="wrap">
<div id="nav">
<a href="./"{{if eq .Nav "dashboard"}} class="on"{{end}}>Dashboard</a>
<a href="settings"{{if eq .Nav "settings"}} class="on"{{end}}>Settings</a>
<a href="console"{{if eq .Nav "console"}} class="on"{{end}}>Console</a>
<a href="events">Event log (live)</a>
</div>
<div id="main">
<h1>{{.Title}}</h1>
{{template "content" .}}
</div>
</div>
<div id="foot">Server time {{.Now}} &middot; Best viewed in Internet Explorer 6 at 1024x768</div>
</body>
</html>`

const dashboardHTML = `{{define "content"}}
{{if .Restarted}}<div class="notice ok" id="restarted">Service restarted successfully.</div>{{end}}
<fieldset><legend>Identity</legend>
{{if .User}}<p>Signed in as <b>{{.User}}</b>.</p>
<p>Groups: {{if .Groups}}<span id="groups">{{range $i, $g := .Groups}}{{if $i}}, {{end}}<b>{{$g}}</b>{{end}}</span>{{else}}<i>none</i>{{end}}</p>
{{else}}<p>No identity header was received: this panel trusts whoever sets it.</p>{{end}}
</fieldset>
<fieldset><legend>Maintenance</legend>
<form method="post" action="restart"><button type="submit">Restart service</button></form>
</fieldset>
<fieldset><legend>Request headers received</legend>
<p>Identity headers are highlighted. A spoofed one sent by the browser must not appear here.</p>
<table class="grid" id="headers"><tr><th>Header</th><th>Value</th></tr>
{{range .Headers}}<tr{{if .Identity}} class="id"{{end}}><td>{{.Name}}</td><td class="v">{{.Value}}</td></tr>
{{end}}</table>
</fieldset>
{{end}}`

const settingsHTML = `{{define "content"}}
{{if .Notice}}<div class="notice ok" id="notice">{{.Notice}}</div>{{end}}
<form method="post" action="settings">
<fieldset><legend>General</legend>
<p><label for="site_name">Site name</label><input type="text" id="site_name" name="site_name" value="{{.Settings.SiteName}}"></p>
<p><label for="admin_email">Admin e-mail</label><input type="text" id="admin_email" name="admin_email" value="{{.Settings.AdminEmail}}"></p>
<p><label for="timezone">Time zone</label><input type="text" id="timezone" name="timezone" value="{{.Settings.Timezone}}"></p>
<p><label for="max_sessions">Max sessions</label><input type="text" id="max_sessions" name="max_sessions" value="{{.Settings.MaxSessions}}"></p>
<p><label for="maintenance">Maintenance mode</label><input type="checkbox" id="maintenance" name="maintenance"{{if .Settings.Maintenance}} checked{{end}}></p>
</fieldset>
<input type="submit" value="Save settings">
</form>
{{end}}`

const consoleHTML = `{{define "content"}}
<fieldset><legend>Remote console (WebSocket echo)</legend>
<div id="log"></div>
<form id="f"><input type="text" id="msg" autocomplete="off" placeholder="type a command"> <button type="submit">Send</button> <span id="state">connecting...</span></form>
</fieldset>
<script>
(function () {
  var u = new URL("ws", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  var log = document.getElementById("log"), state = document.getElementById("state");
  function line(s) { log.textContent += s + "\n"; log.scrollTop = log.scrollHeight; }
  var ws = new WebSocket(u.href);
  ws.onopen = function () { state.textContent = "connected"; line("* connected to " + u.href); };
  ws.onmessage = function (e) { line("< " + e.data); };
  ws.onclose = function () { state.textContent = "disconnected"; line("* closed"); };
  ws.onerror = function () { line("* error"); };
  document.getElementById("f").onsubmit = function (e) {
    e.preventDefault();
    var m = document.getElementById("msg");
    if (m.value && ws.readyState === 1) { ws.send(m.value); line("> " + m.value); m.value = ""; }
  };
})();
</script>
{{end}}`

const notFoundHTML = `{{define "content"}}
<div class="notice">The page <b>{{.Path}}</b> does not exist.</div>
{{end}}`
