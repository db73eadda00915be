#include "health/dashboard.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/*
 * The page in three pieces of markup around the style and the script, whose exact bytes the
 * Content-Security-Policy names by hash. No URL of anything outside this listener appears here.
 */
static const char page_head[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>poolgate</title>\n"
	"<style>";

static const char page_style[] =
	"\n"
	"body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232b; background: #f4f6f8; }\n"
	"header { display: flex; gap: 1.5em; align-items: baseline; padding: 0.8em 1.2em;"
	" background: #1d232b; color: #f4f6f8; }\n"
	"header h1 { font-size: 1.2em; margin: 0; }\n"
	"#updated.error { color: #ff9b8f; }\n"
	"main { padding: 1em 1.2em; overflow-x: auto; }\n"
	"table { border-collapse: collapse; width: 100%; background: #fff; }\n"
	"th, td { text-align: left; padding: 0.45em 0.7em; border-bottom: 1px solid #dde2e7;"
	" vertical-align: top; }\n"
	"th { font-weight: 600; background: #e9edf1; white-space: nowrap; }\n"
	"td.id { font-family: ui-monospace, monospace; font-weight: 600; }\n"
	".state { display: inline-block; padding: 0.05em 0.6em; border-radius: 1em;"
	" font-weight: 600; background: #c9d1d9; }\n"
	".s-up { background: #b7e4c7; } .s-down { background: #f5b7b1; }\n"
	".s-draining { background: #ffe08a; } .s-drained { background: #ffd0a0; }\n"
	".s-maint { background: #c8c3f0; }\n"
	".note { display: block; color: #5b6570; font-size: 0.85em; }\n"
	".bar { position: relative; width: 9em; height: 1.3em; background: #e9edf1;"
	" border-radius: 3px; overflow: hidden; }\n"
	".bar .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #6fbf8b; }\n"
	".bar .fill.warm { background: #f0c14b; } .bar .fill.hot { background: #e8796b; }\n"
	".bar .label { position: relative; padding-left: 0.4em; font-size: 0.85em; }\n"
	".unknown { color: #8a939c; font-style: italic; }\n"
	".user { display: inline-block; margin: 0 0.3em 0.2em 0; padding: 0 0.4em;"
	" background: #eef1f4; border-radius: 3px; font-family: ui-monospace, monospace; }\n"
	"footer { padding: 0 1.2em 1em; color: #5b6570; font-size: 0.85em; }\n";

static const char page_body[] =
	"</style>\n"
	"</head>\n"
	"<body>\n"
	"<header><h1>poolgate</h1><span id=\"summary\"></span><span id=\"updated\">loading"
	"</span></header>\n"
	"<main>\n"
	"<table id=\"instances\">\n"
	"<thead><tr><th>Instance</th><th>State</th><th>Address</th><th>Users</th><th>CPU</th>"
	"<th>Memory</th><th>GPU</th><th>Pinned users</th><th>Since</th></tr></thead>\n"
	"<tbody></tbody>\n"
	"</table>\n"
	"</main>\n"
	"<footer>Reads /status every 3 seconds. Operators act with poolgatectl or the admin API "
	"(docs/admin.md).</footer>\n"
	"<script>";

/*
 * Everything from /status is untrusted text: it reaches the page only through textContent, the
 * class names it picks from come from fixed lists, and widths are numbers.
 */
static const char page_script[] =
	"\n"
	"(function () {\n"
	"'use strict';\n"
	"var REFRESH_MS = 3000;\n"
	"var STATES = ['up', 'down', 'unknown', 'draining', 'drained', 'maint'];\n"
	"var tbody = document.querySelector('#instances tbody');\n"
	"var updated = document.getElementById('updated');\n"
	"var summary = document.getElementById('summary');\n"
	"\n"
	"function el(tag, cls, text) {\n"
	"  var e = document.createElement(tag);\n"
	"  if (cls) e.className = cls;\n"
	"  if (text !== undefined && text !== null) e.textContent = String(text);\n"
	"  return e;\n"
	"}\n"
	"function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }\n"
	"function pick(o, keys) {\n"
	"  for (var i = 0; o && i < keys.length; i++) { if (num(o[keys[i]]) !== null) return o[keys[i]]; }\n"
	"  return null;\n"
	"}\n"
	"function bar(f, text, title) {\n"
	"  var wrap = el('div', 'bar');\n"
	"  if (f === null) { wrap.appendChild(el('span', 'unknown', 'unknown')); }\n"
	"  else {\n"
	"    var c = Math.max(0, Math.min(1, f));\n"
	"    var fill = el('div', 'fill' + (c >= 0.9 ? ' hot' : c >= 0.7 ? ' warm' : ''));\n"
	"    fill.style.width = (c * 100).toFixed(1) + '%';\n"
	"    wrap.appendChild(fill);\n"
	"    wrap.appendChild(el('span', 'label', text));\n"
	"  }\n"
	"  if (title) wrap.title = String(title);\n"
	"  return wrap;\n"
	"}\n"
	"function pct(f) { return Math.round(f * 100) + '%'; }\n"
	"function frac(v) { return v === null ? null : v > 1 && v <= 100 ? v / 100 : v; }\n"
	"\n"
	"/* The load figures, wherever the load probe puts them; null when unknown. */\n"
	"function load(inst) {\n"
	"  var l = inst.load;\n"
	"  if (!l || typeof l !== 'object') return null;\n"
	"  if (typeof l.state === 'string' && l.state !== 'known') return { why: l.reason || l.state };\n"
	"  var f = (l.figures && typeof l.figures === 'object') ? l.figures : l;\n"
	"  var out = { cpu: null, mem: null, gpu: null };\n"
	"  var cpu = frac(pick(f, ['cpu', 'cpu_used', 'cpu_util']));\n"
	"  var l1 = pick(f, ['load1']), n = pick(f, ['ncpu', 'cpus']);\n"
	"  if (cpu !== null) out.cpu = [cpu, pct(cpu)];\n"
	"  else if (l1 !== null && n) out.cpu = [l1 / n, 'load ' + l1.toFixed(2) + ' / ' + n];\n"
	"  var mem = frac(pick(f, ['mem', 'mem_used', 'memory']));\n"
	"  var tot = pick(f, ['mem_total_kb']), avail = pick(f, ['mem_avail_kb']);\n"
	"  if (mem === null && tot && avail !== null) mem = 1 - avail / tot;\n"
	"  if (mem !== null) out.mem = [mem, pct(mem)];\n"
	"  var gpu = frac(pick(f, ['gpu', 'gpu_util']));\n"
	"  var ngpu = pick(f, ['ngpu', 'gpus']);\n"
	"  if (gpu !== null && ngpu !== 0) out.gpu = [gpu, pct(gpu)];\n"
	"  else if (ngpu === 0) out.gpu = 'none';\n"
	"  return out;\n"
	"}\n"
	"function loadCell(l, k) {\n"
	"  var td = el('td');\n"
	"  if (l && l[k] === 'none') td.appendChild(el('span', 'unknown', 'none'));\n"
	"  else if (l && l[k]) td.appendChild(bar(l[k][0], l[k][1]));\n"
	"  else td.appendChild(bar(null, '', l && l.why ? l.why : 'no load figures'));\n"
	"  return td;\n"
	"}\n"
	"\n"
	"function row(inst) {\n"
	"  var tr = el('tr');\n"
	"  var users = Array.isArray(inst.users) ? inst.users : [];\n"
	"  var state = String(inst.state);\n"
	"  tr.appendChild(el('td', 'id', inst.id));\n"
	"  var st = el('td');\n"
	"  st.appendChild(el('span', 'state s-' + (STATES.indexOf(state) >= 0 ? state : 'other'), state));\n"
	"  if (inst.admin_override) st.appendChild(el('span', 'note', 'set by an operator'));\n"
	"  if (inst.health && inst.health !== state) st.appendChild(el('span', 'note', 'health ' + inst.health));\n"
	"  tr.appendChild(st);\n"
	"  var addr = el('td', null, inst.address);\n"
	"  addr.appendChild(el('span', 'note', 'ssh ' + inst.ssh_port + ', ' + inst.http_scheme + ' ' + inst.http_port));\n"
	"  tr.appendChild(addr);\n"
	"  var cap = num(inst.capacity);\n"
	"  var ucell = el('td');\n"
	"  ucell.appendChild(bar(cap ? users.length / cap : null, users.length + ' / ' + cap));\n"
	"  tr.appendChild(ucell);\n"
	"  var l = load(inst);\n"
	"  tr.appendChild(loadCell(l, 'cpu'));\n"
	"  tr.appendChild(loadCell(l, 'mem'));\n"
	"  tr.appendChild(loadCell(l, 'gpu'));\n"
	"  var uc = el('td');\n"
	"  users.slice(0, 50).forEach(function (u) { uc.appendChild(el('span', 'user', u)); });\n"
	"  if (users.length > 50) uc.appendChild(el('span', 'note', '+' + (users.length - 50) + ' more'));\n"
	"  tr.appendChild(uc);\n"
	"  var since = el('td', null, inst.since);\n"
	"  since.appendChild(el('span', 'note', inst.reason));\n"
	"  tr.appendChild(since);\n"
	"  return tr;\n"
	"}\n"
	"\n"
	"function render(s) {\n"
	"  var list = Array.isArray(s.instances) ? s.instances : [];\n"
	"  var rows = document.createDocumentFragment(), up = 0, users = 0;\n"
	"  list.forEach(function (inst) {\n"
	"    rows.appendChild(row(inst));\n"
	"    if (inst.state === 'up') up++;\n"
	"    if (Array.isArray(inst.users)) users += inst.users.length;\n"
	"  });\n"
	"  tbody.replaceChildren(rows);\n"
	"  summary.textContent = list.length + ' instances, ' + up + ' up, ' + users + ' users pinned'\n"
	"    + (s.version ? ' \\u00b7 poolgate ' + s.version : '');\n"
	"}\n"
	"\n"
	"function refresh() {\n"
	"  fetch('/status', { cache: 'no-store' })\n"
	"    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })\n"
	"    .then(function (s) {\n"
	"      render(s);\n"
	"      updated.className = '';\n"
	"      updated.textContent = 'updated ' + new Date().toLocaleTimeString();\n"
	"    })\n"
	"    .catch(function (e) {\n"
	"      updated.className = 'error';\n"
	"      updated.textContent = 'cannot read /status: ' + e.message;\n"
	"    })\n"
	"    .then(function () { setTimeout(refresh, REFRESH_MS); });\n"
	"}\n"
	"refresh();\n"
	"})();\n";

static const char page_tail[] =
	"</script>\n"
	"</body>\n"
	"</html>\n";

static struct dashboard page;
static char page_html[sizeof(page_head) + sizeof(page_style) + sizeof(page_body) +
    sizeof(page_script) + sizeof(page_tail)];
static char page_headers[1024];

/* 'sha256-BASE64' of s into out (64 bytes is enough). Returns 0 or -1. */
static int
csp_hash(const char *s, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE], b64[64];
	unsigned int n = 0;

	if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	EVP_EncodeBlock(b64, md, (int)n);
	return snprintf(out, outlen, "'sha256-%s'", (const char *)b64) < (int)outlen ? 0 : -1;
}

const struct dashboard *
dashboard_get(void)
{
	char script_hash[64], style_hash[64];
	int n;

	if (page.html != NULL)
		return &page;
	if (csp_hash(page_script, script_hash, sizeof(script_hash)) != 0 ||
	    csp_hash(page_style, style_hash, sizeof(style_hash)) != 0)
		return NULL;
	n = snprintf(page_html, sizeof(page_html), "%s%s%s%s%s", page_head, page_style, page_body,
	    page_script, page_tail);
	if (n < 0 || (size_t)n >= sizeof(page_html) ||
	    snprintf(page_headers, sizeof(page_headers),
	    "Content-Security-Policy: default-src 'none'; script-src %s; style-src %s; "
	    "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'; require-trusted-types-for 'script'\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Cross-Origin-Opener-Policy: same-origin\r\n", script_hash, style_hash) >=
	    (int)sizeof(page_headers))
		return NULL;
	page.html = page_html;
	page.html_len = (size_t)n;
	page.headers = page_headers;
	return &page;
}
