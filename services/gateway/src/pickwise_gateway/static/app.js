// Pickwise web page: search, product cards, grounded answer, similar items, click tracking.
// Plain JS, no build step. Data is only ever inserted with textContent (never as HTML).
(function () {
  "use strict";
  const config = window.PICKWISE_CONFIG || {};
  const $ = (id) => document.getElementById(id);
  const state = { requestId: null, lastClick: null };
  window.pickwise = state; // inspectable from tests and the console

  function randomId(prefix) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function stored(storage, key, make) {
    let value = storage.getItem(key);
    if (!value) { value = make(); storage.setItem(key, value); }
    return value;
  }
  const userId = stored(localStorage, "pickwise.user_id", () => randomId("web-"));
  const sessionId = stored(sessionStorage, "pickwise.session_id", () => randomId("s-"));
  $("user-label").textContent = "you are " + userId;

  function apiKey() { return config.apiKey || localStorage.getItem("pickwise.api_key") || ""; }
  if (!config.embeddedKey) {
    $("key-box").hidden = false;
    $("api-key").value = localStorage.getItem("pickwise.api_key") || "";
    $("save-key").addEventListener("click", () => localStorage.setItem("pickwise.api_key", $("api-key").value.trim()));
  }

  async function api(method, path, body) {
    const response = await fetch((config.apiBase || "") + path, {
      method,
      headers: Object.assign({ "X-API-Key": apiKey() }, body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
      keepalive: method === "POST" && path.startsWith("/v1/events"),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    return { status: response.status, ok: response.ok, data };
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  const inr = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", maximumFractionDigits: 0 });
  function gb(value) {
    if (value === null || value === undefined) return null;
    return value >= 1024 && value % 1024 === 0 ? value / 1024 + " TB" : value + " GB";
  }
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function title(item) {
    const name = [item.brand, item.model].filter(Boolean).join(" ");
    return name || item.title || item.item_id;
  }

  function renderAnswer(result) {
    const box = $("answer");
    const answer = result.answer;
    if (!answer) { box.hidden = true; return; }
    const byId = new Map(result.items.map((i) => [i.item_id, i]));
    $("answer-summary").textContent = answer.summary;
    const picks = $("answer-picks");
    picks.replaceChildren();
    for (const pick of answer.picks || []) {
      const item = byId.get(pick.item_id);
      if (!item) continue; // the gateway already drops these; never show an uncited claim
      const li = el("li");
      li.append(el("strong", null, title(item)), document.createTextNode(" — " + pick.why));
      picks.append(li);
    }
    const notes = ["answer by " + answer.provider];
    if (result.degraded) notes.push("degraded: " + result.degradation_reasons.join(", "));
    $("answer-meta").textContent = notes.join(" · ");
    box.hidden = false;
  }

  function card(item, position) {
    const node = el("article", "card");
    node.dataset.itemId = item.item_id;
    node.dataset.position = String(position);
    node.tabIndex = 0;
    node.append(el("span", "brand", item.brand));
    node.append(el("h2", null, title(item)));
    const specs = [item.ram_gb != null ? gb(item.ram_gb) + " RAM" : null,
                   item.storage_gb != null ? gb(item.storage_gb) + " storage" : null, item.color]
      .filter(Boolean).join(" · ");
    node.append(el("div", "specs", specs));
    const price = el("div", "price", inr.format(item.price_inr));
    if (item.original_price_inr && item.original_price_inr > item.price_inr) {
      price.append(el("s", null, inr.format(item.original_price_inr)));
    }
    if (item.discount_pct) price.append(el("span", "discount", Math.round(item.discount_pct) + "% off"));
    node.append(price);
    if (item.rating != null) node.append(el("div", "rating", "★ " + Number(item.rating).toFixed(1)));
    const similarButton = el("button", "link similar-button", "Similar");
    similarButton.type = "button";
    const similarList = el("ul", "similar");
    similarButton.addEventListener("click", (event) => { event.stopPropagation(); showSimilar(item, similarList); });
    node.append(similarButton, similarList);
    node.addEventListener("click", () => trackClick(node, item, position));
    node.addEventListener("keydown", (event) => { if (event.key === "Enter") trackClick(node, item, position); });
    return node;
  }

  async function trackClick(node, item, position) {
    node.classList.add("clicked");
    node.dataset.clickStatus = "pending";
    const body = { user_id: userId, item_id: item.item_id, position, source: "search",
                   session_id: sessionId, request_id: state.requestId };
    let status = 0;
    try { status = (await api("POST", "/v1/events/click", body)).status; } catch (_) { status = 0; }
    node.dataset.clickStatus = String(status);
    state.lastClick = { item_id: item.item_id, position, status };
  }

  function similarEntries(data) {
    const list = Array.isArray(data) ? data : (data && (data.items || data.candidates || data.similar)) || [];
    return list.map((entry) => entry.item || entry);
  }

  async function showSimilar(item, list) {
    list.replaceChildren(el("li", "meta", "loading…"));
    try {
      const result = await api("GET", "/v1/items/" + encodeURIComponent(item.item_id) + "/similar?k=5");
      list.replaceChildren();
      if (!result.ok) { list.append(el("li", "meta", "similar items unavailable (" + result.status + ")")); return; }
      const entries = similarEntries(result.data);
      if (!entries.length) list.append(el("li", "meta", "no similar items"));
      for (const other of entries.slice(0, 5)) {
        list.append(el("li", null, title(other) + (other.price_inr ? " — " + inr.format(other.price_inr) : "")));
      }
    } catch (error) {
      list.replaceChildren(el("li", "meta", "similar items unavailable"));
    }
  }

  async function search(query) {
    setStatus("Searching…");
    $("results").setAttribute("aria-busy", "true");
    try {
      const result = await api("POST", "/v1/recommendations",
                               { query, user_id: userId, session_id: sessionId, k: 12 });
      if (!result.ok) {
        const message = result.data && result.data.error ? result.data.error.message : "HTTP " + result.status;
        setStatus("Search failed: " + message, true);
        return;
      }
      const data = result.data;
      state.requestId = data.request_id;
      const cards = data.items.map((item, index) => card(item, index));
      $("results").replaceChildren(...cards);
      renderAnswer(data);
      setStatus(data.items.length + " result" + (data.items.length === 1 ? "" : "s") + " in " +
                Math.round(data.timings_ms.total || 0) + " ms · variant " + data.variant);
      document.body.dataset.requestId = data.request_id;
    } catch (error) {
      setStatus("Search failed: " + error, true);
    } finally {
      $("results").removeAttribute("aria-busy");
    }
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("query").value.trim();
    if (query) search(query);
  });
})();
