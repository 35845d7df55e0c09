// Pickwise storefront page: trending and personal shelves before typing, search with facets, "Similar"
// carousel, "Why this?" explanation, relaxed/corrected query notices, recent searches, click tracking.
// Plain JS, no build step, nothing inline (the page runs under a strict Content-Security-Policy).
// Data is only ever inserted with textContent (never as HTML).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const config = readConfig();
  const RECENT_KEY = "pickwise.recent_searches";
  const RECENT_MAX = 8;
  const FACETS = [["brand", "Brand"], ["price", "Price"], ["ram", "RAM"], ["storage", "Storage"], ["rating", "Rating"]];
  // facet → the explicit filter fields its "lo-hi" value fills (decision 0711); brand fills `brands`
  const RANGE_FIELDS = { price: ["price_min_inr", "price_max_inr"], ram: ["ram_gb_min", "ram_gb_max"],
                         storage: ["storage_gb_min", "storage_gb_max"], rating: ["rating_min", null] };
  const state = { requestId: null, lastClick: null, query: "", filters: {}, lastResponse: null, searches: 0 };
  window.pickwise = state; // inspectable from tests and the console

  function readConfig() {
    const node = document.getElementById("pickwise-config");
    if (!node) return {};
    try { return JSON.parse(node.textContent || "{}"); } catch (_) { return {}; }
  }
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
    $("save-key").addEventListener("click", () => {
      localStorage.setItem("pickwise.api_key", $("api-key").value.trim());
      loadShelves();
    });
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
  function errorText(result) {
    return result.data && result.data.error ? result.data.error.message : "HTTP " + result.status;
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  // ------------------------------------------------------------------ formatting

  const inr = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", maximumFractionDigits: 0 });
  const gbp = new Intl.NumberFormat("en-GB", { style: "currency", currency: "GBP" });
  // an item's price in its catalog's currency (decision 0806); price_inr for answers that carry only it
  function money(item) {
    const currency = item.currency || "INR";
    const amount = item.price != null ? item.price : item.price_inr;
    if (currency === "INR") return inr.format(amount);
    if (currency === "GBP") return gbp.format(amount);
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  }
  function gb(value) {
    if (value === null || value === undefined) return null;
    if (value < 1) return Math.round(value * 1024) + " MB";
    return value >= 1024 && value % 1024 === 0 ? value / 1024 + " TB" : value + " GB";
  }
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function button(className, text, label) {
    const node = el("button", className, text);
    node.type = "button";
    if (label) node.setAttribute("aria-label", label);
    return node;
  }
  function title(item) {
    const name = [item.brand, item.model].filter(Boolean).join(" ");
    return name || item.title || item.item_id;
  }
  function specsText(item) {
    return [item.ram_gb != null ? gb(item.ram_gb) + " RAM" : null,
            item.storage_gb != null ? gb(item.storage_gb) + " storage" : null, item.color]
      .filter(Boolean).join(" · ");
  }

  // what a constraint field means to a shopper, for "met"/"relaxed" lines
  const CONSTRAINT_NAMES = {
    brands: "brand", brands_exclude: "excluded brands", price_min_inr: "price", price_max_inr: "price",
    price: "price", ram_gb_min: "RAM", ram_gb_max: "RAM", ram: "RAM", storage_gb_min: "storage",
    storage_gb_max: "storage", storage: "storage", rating_min: "rating", rating: "rating",
    discount_pct_min: "discount", discount: "discount", price_bands: "price band", feature_phone: "phone type",
    colors: "colour", color: "colour",
  };
  function constraintName(name) { return CONSTRAINT_NAMES[name] || String(name).replace(/_/g, " "); }
  function describeConstraint(field, parsed) {
    const v = parsed[field];
    switch (field) {
      case "brands": return v.join(" or ");
      case "brands_exclude": return "not " + v.join(", ");
      case "price_min_inr": return "from " + inr.format(v);
      case "price_max_inr": return "under " + inr.format(v);
      case "ram_gb_min": return "at least " + gb(v) + " RAM";
      case "ram_gb_max": return "at most " + gb(v) + " RAM";
      case "storage_gb_min": return "at least " + gb(v) + " storage";
      case "storage_gb_max": return "at most " + gb(v) + " storage";
      case "rating_min": return "rated " + v + "★ or more";
      case "discount_pct_min": return "at least " + v + "% off";
      case "price_bands": return v.join("/") + " price band";
      case "feature_phone": return v ? "feature phone" : "smartphone";
      case "colors": return v.join(" or ");
      default: return constraintName(field);
    }
  }
  function isSet(value) {
    return !(value === null || value === undefined || (Array.isArray(value) && value.length === 0));
  }
  const CONSTRAINT_FIELDS = ["brands", "brands_exclude", "price_min_inr", "price_max_inr", "ram_gb_min", "ram_gb_max",
                             "storage_gb_min", "storage_gb_max", "rating_min", "discount_pct_min", "price_bands",
                             "feature_phone", "colors"];
  function describeParsed(parsed) {
    return CONSTRAINT_FIELDS.filter((f) => isSet(parsed[f])).map((f) => describeConstraint(f, parsed));
  }

  // ------------------------------------------------------------------ clicks

  // requestId: the response that showed the item (its impression, decision 1001); search cards use the page's
  async function trackClick(node, item, position, source, requestId) {
    node.classList.add("clicked");
    node.dataset.clickStatus = "pending";
    const body = { user_id: userId, item_id: item.item_id, position, source, session_id: sessionId };
    const shownBy = requestId || (source === "search" ? state.requestId : null);
    if (shownBy) body.request_id = shownBy;
    let status = 0;
    try { status = (await api("POST", "/v1/events/click", body)).status; } catch (_) { status = 0; }
    node.dataset.clickStatus = String(status);
    state.lastClick = { item_id: item.item_id, position, status, source };
  }
  function clickable(node, item, position, source, requestId) {
    node.tabIndex = 0;
    node.dataset.itemId = item.item_id;
    node.dataset.position = String(position);
    node.addEventListener("click", (event) => {
      if (event.target.closest("button")) return; // the card's own buttons are not a product click
      trackClick(node, item, position, source, requestId);
    });
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === node) trackClick(node, item, position, source, requestId);
    });
  }

  // ------------------------------------------------------------------ dialog (Similar carousel, Why this?)

  let dialogReturn = null;
  function openDialog(heading, body, opener) {
    dialogReturn = opener || document.activeElement;
    $("dialog-title").textContent = heading;
    $("dialog-body").replaceChildren(body);
    $("overlay").hidden = false;
    document.body.classList.add("dialog-open");
    $("dialog-close").focus();
  }
  function closeDialog() {
    if ($("overlay").hidden) return;
    $("overlay").hidden = true;
    document.body.classList.remove("dialog-open");
    $("dialog-body").replaceChildren();
    if (dialogReturn && document.contains(dialogReturn)) dialogReturn.focus();
    dialogReturn = null;
  }
  $("dialog-close").addEventListener("click", closeDialog);
  $("overlay").addEventListener("click", (event) => { if (event.target === $("overlay")) closeDialog(); });
  document.addEventListener("keydown", (event) => {
    if ($("overlay").hidden) return;
    if (event.key === "Escape") { event.preventDefault(); closeDialog(); return; }
    if (event.key !== "Tab") return;
    // keep focus inside the open dialog
    const focusable = Array.from($("dialog").querySelectorAll("button, [tabindex='0'], a[href]"))
      .filter((n) => !n.disabled && n.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0], last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });

  function similarEntries(data) {
    const list = Array.isArray(data) ? data : (data && (data.items || data.candidates || data.similar)) || [];
    return list.map((entry) => entry.item || entry);
  }

  async function showSimilar(item, opener) {
    const region = el("div", "carousel");
    region.setAttribute("role", "region");
    region.setAttribute("aria-roledescription", "carousel");
    region.setAttribute("aria-label", "Phones similar to " + title(item));
    const track = el("ul", "carousel-track");
    track.id = "similar-track";
    track.append(el("li", "meta", "loading…"));
    const prev = button("ghost carousel-prev", "‹", "Previous");
    const next = button("ghost carousel-next", "›", "Next");
    const step = (direction) => track.scrollBy({ left: direction * track.clientWidth * 0.8, behavior: "smooth" });
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    region.append(prev, track, next);
    openDialog("Similar to " + title(item), region, opener);
    try {
      const result = await api("GET", "/v1/items/" + encodeURIComponent(item.item_id) + "/similar?k=10");
      if (!result.ok) { track.replaceChildren(el("li", "meta", "similar items unavailable (" + result.status + ")")); return; }
      const entries = similarEntries(result.data);
      track.replaceChildren();
      if (!entries.length) track.append(el("li", "meta", "no similar items"));
      entries.forEach((other, index) => {
        const li = miniCard(other, index, "similar", null, result.data.request_id);
        li.setAttribute("aria-roledescription", "slide");
        li.setAttribute("aria-label", (index + 1) + " of " + entries.length);
        track.append(li);
      });
    } catch (error) {
      track.replaceChildren(el("li", "meta", "similar items unavailable"));
    }
  }

  function explanation(item) {
    const box = el("div", "why");
    const parsed = (state.lastResponse && state.lastResponse.parsed) || {};
    const relaxed = new Set((parsed.relaxed || []).map(constraintName));
    const verdicts = item.satisfies || {};
    const met = el("ul", "checks");
    for (const field of Object.keys(verdicts)) {
      const ok = verdicts[field];
      const text = (ok ? "✓ " : "✗ ") + (isSet(parsed[field]) ? describeConstraint(field, parsed) : constraintName(field))
        + (!ok && relaxed.has(constraintName(field)) ? " (relaxed)" : "");
      met.append(el("li", ok ? "ok" : "miss", text));
    }
    box.append(el("h3", null, "Your constraints"));
    if (met.children.length) box.append(met);
    else box.append(el("p", "meta", "The query set no constraints: ranked on relevance alone."));

    box.append(el("h3", null, "Personalisation"));
    const boost = item.boost;
    const lines = el("ul", "checks");
    if (boost) {
      if (boost.clicked) lines.append(el("li", "ok", "You looked at this phone recently"));
      if (boost.affinity > 0) lines.append(el("li", "ok", "You like this brand: +" + Math.round(boost.affinity * 100) + "%"));
      if (boost.popularity > 0) lines.append(el("li", null, "Popular right now: +" + Math.round(boost.popularity * 100) + "%"));
      lines.append(el("li", "meta", "Behaviour boost ×" + Number(boost.multiplier || 1).toFixed(2)));
    } else {
      lines.append(el("li", "meta", "No behaviour boost (no history for you yet, or features unavailable)"));
    }
    box.append(lines);

    const answer = state.lastResponse && state.lastResponse.answer;
    const pick = answer && (answer.picks || []).find((p) => p.item_id === item.item_id);
    if (pick) { box.append(el("h3", null, "In short")); box.append(el("p", null, pick.why)); }
    const scores = item.scores || {};
    const parts = [["relevance", scores.fused], ["ranker", scores.ranker], ["cross-encoder", scores.cross_encoder]]
      .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => k + " " + Number(v).toFixed(3));
    box.append(el("p", "meta", "Rank " + item.rank + (parts.length ? " · " + parts.join(" · ") : "")));
    return box;
  }

  // ------------------------------------------------------------------ cards

  function miniCard(item, position, source, reason, requestId) {
    const li = el("li", "mini-card");
    li.append(el("span", "brand", item.brand));
    li.append(el("h3", null, title(item)));
    li.append(el("div", "specs", specsText(item)));
    li.append(el("div", "price", money(item)));
    if (item.rating != null) li.append(el("div", "rating", "★ " + Number(item.rating).toFixed(1)));
    if (reason) li.append(el("div", "meta reason", reason));
    clickable(li, item, position, source, requestId);
    return li;
  }

  function card(item, position) {
    const node = el("article", "card");
    node.append(el("span", "brand", item.brand));
    node.append(el("h2", null, title(item)));
    node.append(el("div", "specs", specsText(item)));
    const price = el("div", "price", money(item));
    if (item.original_price_inr && item.original_price_inr > item.price_inr) {
      price.append(el("s", null, inr.format(item.original_price_inr)));
    }
    if (item.discount_pct) price.append(el("span", "discount", Math.round(item.discount_pct) + "% off"));
    node.append(price);
    if (item.rating != null) node.append(el("div", "rating", "★ " + Number(item.rating).toFixed(1)));
    const misses = Object.entries(item.satisfies || {}).filter(([, ok]) => !ok).map(([f]) => constraintName(f));
    if (misses.length) node.append(el("div", "miss-note", "Outside your " + Array.from(new Set(misses)).join(", ")));
    const actions = el("div", "actions");
    const similar = button("link similar-button", "Similar", "Similar to " + title(item));
    similar.addEventListener("click", () => showSimilar(item, similar));
    const why = button("link why-button", "Why this?", "Why " + title(item) + "?");
    why.addEventListener("click", () => openDialog("Why " + title(item) + "?", explanation(item), why));
    actions.append(similar, why);
    node.append(actions);
    clickable(node, item, position, "search");
    return node;
  }

  // ------------------------------------------------------------------ shelves (before typing)

  async function loadTrending() {
    const list = $("trending-items");
    try {
      const result = await api("GET", "/v1/popular?k=8");
      if (!result.ok) { $("trending-meta").textContent = "Trending unavailable: " + errorText(result); return; }
      const entries = similarEntries(result.data);
      list.replaceChildren(...entries.map((item, i) => miniCard(item, i, "feed")));
      const source = result.data && result.data.source;
      $("trending-meta").textContent = source === "rating" ? "Top rated (no recent activity yet)"
        : "Most viewed and bought " + ({ "24h": "in the last 24 hours", "7d": "this week", all: "overall" }[source] || "");
      $("trending").dataset.loaded = "true";
    } catch (error) {
      $("trending-meta").textContent = "Trending unavailable";
    }
  }

  const FEED_REASONS = { similar: "Like one you viewed", preferred_brand: "A brand you like", popular: "Popular" };
  async function loadForYou() {
    try {
      const result = await api("GET", "/v1/users/" + encodeURIComponent(userId) + "/recommendations?k=8");
      if (!result.ok || !result.data || result.data.cold_start || !result.data.items.length) {
        $("for-you").hidden = true;
        return;
      }
      $("for-you-items").replaceChildren(...result.data.items.map((entry, i) =>
        miniCard(entry.item, i, "feed", FEED_REASONS[entry.reason] || null, result.data.request_id)));
      $("for-you").hidden = false;
    } catch (_) {
      $("for-you").hidden = true;
    }
  }
  function loadShelves() { loadTrending(); loadForYou(); }

  // ------------------------------------------------------------------ recent searches

  function recentSearches() {
    try { return JSON.parse(localStorage.getItem(RECENT_KEY) || "[]").filter((q) => typeof q === "string"); }
    catch (_) { return []; }
  }
  function remember(query) {
    const list = [query, ...recentSearches().filter((q) => q.toLowerCase() !== query.toLowerCase())].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
    renderRecent();
  }
  function renderRecent() {
    const list = recentSearches();
    $("recent").hidden = list.length === 0;
    $("recent-list").replaceChildren(...list.map((query) => {
      const li = el("li");
      const chip = button("chip", query);
      chip.addEventListener("click", () => { $("query").value = query; startSearch(query, {}); });
      li.append(chip);
      return li;
    }));
  }
  $("recent-clear").addEventListener("click", () => {
    localStorage.removeItem(RECENT_KEY);
    renderRecent();
    $("query").focus();
  });

  // ------------------------------------------------------------------ facets

  function filtersBody(selected) {
    const body = {};
    for (const [facet, value] of Object.entries(selected)) {
      if (facet === "brand") { body.brands = [value]; continue; }
      const fields = RANGE_FIELDS[facet];
      if (!fields) continue;
      const [lo, hi] = value.split("-");
      if (lo !== "") body[fields[0]] = Number(lo);
      if (hi !== "" && fields[1]) body[fields[1]] = Number(hi);
    }
    return body;
  }

  function renderFacets(facets) {
    const groups = $("facet-groups");
    groups.replaceChildren();
    for (const [name, label] of FACETS) {
      const values = (facets && facets[name]) || [];
      const chosen = state.filters[name];
      if (!values.length && !chosen) continue;
      const section = el("section", "facet");
      section.dataset.facet = name;
      const heading = el("h3", null, label);
      heading.id = "facet-" + name;
      const list = el("ul");
      list.setAttribute("aria-labelledby", heading.id);
      const shown = values.slice();
      if (chosen && !shown.some((v) => v.value === chosen)) shown.unshift({ value: chosen, label: chosen, count: null });
      for (const value of shown) {
        const li = el("li");
        const pressed = chosen === value.value;
        const toggle = button("facet-value" + (pressed ? " active" : ""), null,
                              label + ": " + value.label + (value.count != null ? ", " + value.count + " phones" : ""));
        toggle.setAttribute("aria-pressed", String(pressed));
        toggle.dataset.facet = name;
        toggle.dataset.value = value.value;
        toggle.append(el("span", "facet-label", value.label));
        if (value.count != null) toggle.append(el("span", "count", String(value.count)));
        toggle.addEventListener("click", () => {
          const next = Object.assign({}, state.filters);
          if (pressed) delete next[name]; else next[name] = value.value;
          startSearch(state.query, next, { focusFacet: name + ":" + value.value });
        });
        li.append(toggle);
        list.append(li);
      }
      section.append(heading, list);
      groups.append(section);
    }
    $("clear-filters").hidden = Object.keys(state.filters).length === 0;
  }
  $("clear-filters").addEventListener("click", () => startSearch(state.query, {}));

  // ------------------------------------------------------------------ notices

  function correctedQuery(query, corrections) {
    let text = query;
    for (const c of corrections) {
      const from = c.from || c.from_;
      if (!from || !c.to) continue;
      const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      text = text.replace(new RegExp("(^|[^\\w])" + escaped + "(?=$|[^\\w])", "i"), "$1" + c.to);
    }
    return text;
  }
  function renderNotices(data) {
    const parsed = data.parsed || {};
    const corrections = parsed.corrections || [];
    const correction = $("correction");
    correction.hidden = corrections.length === 0;
    correction.replaceChildren();
    if (corrections.length) {
      correction.append("Showing results for ", el("strong", null, correctedQuery(data.query, corrections)),
                        " (you typed “" + data.query + "”)");
    }
    const relaxed = parsed.relaxed || [];
    const notice = $("relaxed");
    notice.replaceChildren();
    notice.hidden = true;
    // the items that meet every stated constraint lead; the notice says what the others relax
    const strict = data.items.filter((i) => Object.values(i.satisfies || {}).every(Boolean)).length;
    if (relaxed.length && strict < data.items.length) {
      const asked = describeParsed(parsed);
      const names = Array.from(new Set(relaxed.map(constraintName)));
      const all = asked.length ? asked.join(", ") : "your constraints";
      notice.append(strict === 0 ? "No phone met all of: " + all + "; relaxed: "
                                 : "Only " + strict + " phone" + (strict === 1 ? "" : "s") + " met all of: " + all +
                                   "; the others relax: ",
                    el("strong", null, names.join(", ")), strict === 0 ? ". Showing the closest matches." : ".");
    } else if (!data.items.length) {
      const asked = describeParsed(parsed);
      notice.append("No phone matched " + (asked.length ? asked.join(", ") : "“" + data.query + "”") +
                    ". Try fewer filters — meanwhile, here is what is trending.");
    }
    notice.hidden = notice.childNodes.length === 0;
  }

  // ------------------------------------------------------------------ search

  function showLanding(landing) {
    $("landing").hidden = !landing;
    $("search-view").hidden = landing;
  }

  function startSearch(query, filters, options) {
    state.query = query;
    state.filters = filters || {};
    const params = new URLSearchParams({ q: query });
    for (const [k, v] of Object.entries(state.filters)) params.set("f." + k, v);
    const url = "?" + params.toString();
    if (location.search !== url) history.pushState({ q: query, filters: state.filters }, "", url);
    return search(options || {});
  }

  async function search(options) {
    const query = state.query;
    setStatus("Searching…");
    $("results").setAttribute("aria-busy", "true");
    const body = { query, user_id: userId, session_id: sessionId, k: 12, explain: true };
    const filters = filtersBody(state.filters);
    if (Object.keys(filters).length) body.filters = filters;
    try {
      const result = await api("POST", "/v1/recommendations", body);
      if (!result.ok) {
        setStatus("Search failed: " + errorText(result), true);
        return;
      }
      const data = result.data;
      state.lastResponse = data;
      state.requestId = data.request_id;
      state.searches += 1;
      remember(query);
      $("results").replaceChildren(...data.items.map((item, index) => card(item, index)));
      renderAnswer(data);
      renderFacets(data.facets || {});
      renderNotices(data);
      showLanding(data.items.length === 0); // nothing found: the trending shelf instead of an empty page
      if (!data.items.length) $("search-view").hidden = false;
      setStatus(data.items.length + " result" + (data.items.length === 1 ? "" : "s") + " in " +
                Math.round(data.timings_ms.total || 0) + " ms · variant " + data.variant +
                (data.degraded ? " · degraded: " + data.degradation_reasons.join(", ") : ""));
      document.body.dataset.requestId = data.request_id;
      document.body.dataset.searches = String(state.searches);
      if (options.focusFacet) {
        const [facet, value] = options.focusFacet.split(/:(.*)/s);
        const again = Array.from(document.querySelectorAll(".facet-value"))
          .find((n) => n.dataset.facet === facet && n.dataset.value === value);
        if (again) again.focus();
      }
    } catch (error) {
      setStatus("Search failed: " + error, true);
    } finally {
      $("results").removeAttribute("aria-busy");
    }
  }

  function renderAnswer(result) {
    const box = $("answer");
    const answer = result.answer;
    if (!answer || !result.items.length) { box.hidden = true; return; }
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

  function fromLocation() {
    const params = new URLSearchParams(location.search);
    const query = (params.get("q") || "").trim();
    const filters = {};
    for (const [name] of FACETS) { const v = params.get("f." + name); if (v) filters[name] = v; }
    return { query, filters };
  }
  function route() {
    const { query, filters } = fromLocation();
    $("query").value = query;
    if (query) { state.query = query; state.filters = filters; search({}); }
    else { showLanding(true); setStatus(""); $("correction").hidden = true; $("relaxed").hidden = true; }
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("query").value.trim();
    if (query) startSearch(query, {});
  });
  window.addEventListener("popstate", route);
  const facetsPanel = $("facets-panel");
  if (window.matchMedia && window.matchMedia("(max-width: 720px)").matches) facetsPanel.open = false;

  renderRecent();
  loadShelves();
  route();
})();
