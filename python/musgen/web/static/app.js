// musgen page: builds the controls the server offers (/api/options), submits them to
// /api/generate, and shows each piece's piano roll, audio player and downloads.
"use strict";

const $ = (sel) => document.querySelector(sel);
let options = null;

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

function controlField(c) {
  const id = `ctl-${c.name}`;
  const help = el("small", { text: c.help });
  const label = el("label", { for: id, text: c.label });
  if (c.type === "length") {
    const unit = el("select", { id: `${id}-unit`, name: "length_unit",
                                "aria-label": "Length unit" });
    for (const u of c.units) unit.append(el("option", { value: u, text: u,
                                                        selected: u === c.default_unit }));
    const amount = el("input", { id, name: "length", type: "number", min: c.min,
                                 max: c.max[c.default_unit], step: 1, value: c.default,
                                 required: true });
    unit.addEventListener("change", () => { amount.max = c.max[unit.value]; });
    return el("div", { class: "field" }, [label, el("div", { class: "pair" }, [amount, unit]),
                                          help]);
  }
  if (c.type === "bool") {
    const box = el("input", { id, name: c.name, type: "checkbox", value: "on",
                              checked: c.default === true });
    return el("div", { class: "field" }, [el("label", { for: id }, [box, ` ${c.label}`]), help]);
  }
  if (c.type === "choice") {
    const select = el("select", { id, name: c.name });
    fillChoices(select, c.choices || [], c.default);
    return el("div", { class: "field" }, [label, select, help]);
  }
  if (c.type === "text") {
    const list = c.suggestions ? el("datalist", { id: `${id}-list` },
                                    c.suggestions.map((v) => el("option", { value: v })))
                               : null;
    const input = el("input", { id, name: c.name, type: "text", maxlength: 200,
                                placeholder: c.placeholder || null,
                                list: list ? `${id}-list` : null });
    return el("div", { class: "field" }, list ? [label, input, list, help] : [label, input, help]);
  }
  if (c.type === "file") {
    const input = el("input", { id, name: c.name, type: "file", accept: c.accept });
    const kb = Math.round(c.max_bytes / 1024);
    return el("div", { class: "field" }, [label, input,
                                          el("small", { text: `${c.help}, up to ${kb} KiB` })]);
  }
  const input = el("input", {
    id, name: c.name, type: "number", min: c.min, max: c.max,
    step: c.type === "int" ? 1 : (c.step || "any"),
    value: c.default === null ? "" : c.default,
    placeholder: c.placeholder || null,
  });
  return el("div", { class: "field" }, [label, input, help]);
}

// A select's options: "" (the model's choice) first when there is no default, then the values.
function fillChoices(select, values, preferred) {
  const items = preferred === null || preferred === undefined ? [""] : [];
  select.replaceChildren(...items.concat(values).map((v) => el("option", {
    value: v, text: v === "" ? "model's choice" : v, selected: v === preferred })));
}

// Show the controls the chosen model can follow (a codec-version-2 model has styles, tempo and
// instruments); hidden ones are disabled, so the form never sends them.
function fitControlsToModel(model) {
  for (const c of options.controls) {
    if (!c.needs) continue;
    const field = document.getElementById(`ctl-${c.name}`);
    const usable = !!model && model.features.includes(c.needs) &&
                   (c.needs !== "styles" || model.styles.length > 0);
    field.disabled = !usable;
    field.closest(".field").hidden = !usable;
    if (usable && c.needs === "styles") fillChoices(field, model.styles, null);
  }
}

function buildForm() {
  const select = $("#model");
  for (const m of options.models) {
    select.append(el("option", { value: m.name, text: m.name,
                                 selected: m.name === options.default_model }));
  }
  const box = $("#control-fields");
  for (const c of options.controls) box.append(controlField(c));
  const describe = () => {
    const m = options.models.find((x) => x.name === select.value);
    $("#model-description").textContent = m ? m.description : "";
    fitControlsToModel(m);
  };
  select.addEventListener("change", describe);
  describe();
  if (!options.audio.available) {
    const note = $("#audio-note");
    note.textContent = `No audio on this server: ${options.audio.why}`;
    note.hidden = false;
  }
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

function pieceCard(p, number) {
  const title = `Piece ${number}`;
  const meta = `${p.model} · seed ${p.seed}, stream ${p.index + 1} · ${p.notes} notes · ` +
               `${p.seconds.toFixed(1)} s`;
  const roll = el("img", { class: "roll", src: p.roll_url,
                           alt: `Piano roll of piece ${number}` });
  const links = el("div", { class: "links" }, [
    el("a", { href: p.midi_url, download: `musgen-seed${p.seed}-${p.index + 1}.mid`,
              text: "MIDI" }),
  ]);
  const children = [el("h2", { text: title }), el("p", { class: "meta", text: meta }), roll];
  const formats = Object.keys(p.audio_urls);
  if (formats.length) {
    children.push(el("audio", { controls: true, preload: "metadata",
                                src: p.audio_urls.wav || p.audio_urls[formats[0]] }));
    for (const f of formats) {
      links.append(el("a", { href: p.audio_urls[f],
                             download: `musgen-seed${p.seed}-${p.index + 1}.${f}`,
                             text: f.toUpperCase() }));
    }
  }
  children.push(links);
  return el("article", { class: "piece", "data-piece-id": p.id }, children);
}

async function submit(event) {
  event.preventDefault();
  const form = $("#controls");
  const data = new FormData(form);
  for (const [key, value] of [...data.entries()]) {   // blank means "off": let the server default
    if (value === "" || (value instanceof File && value.size === 0 && !value.name)) {
      data.delete(key);
    }
  }
  const button = $("#generate");
  button.disabled = true;
  showError("");
  $("#status").textContent = "Generating…";
  try {
    const response = await fetch("/api/generate", { method: "POST", body: data });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(body.error || body.detail || response.statusText);
    const list = $("#pieces");
    list.replaceChildren(...body.pieces.map((p, i) => pieceCard(p, i + 1)));
    const extra = body.warnings.length ? ` (primer: ${body.warnings.join("; ")})` : "";
    $("#status").textContent = `${body.pieces.length} piece(s)${extra}`;
  } catch (err) {
    showError(err.message);
    $("#status").textContent = "";
  } finally {
    button.disabled = false;
  }
}

async function start() {
  try {
    const response = await fetch("/api/options");
    options = await response.json();
    buildForm();
    $("#controls").addEventListener("submit", submit);
    document.body.dataset.ready = "true";
  } catch (err) {
    showError(`Could not load the page's options: ${err.message}`);
  }
}

start();
