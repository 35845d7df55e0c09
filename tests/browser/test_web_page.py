"""The web page at / in headless Chromium against the real stack: search, cards, answer, similar items,
and a card click recorded through POST /v1/events/click."""

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

WAIT_S = 20


def _search(browser, stack, query: str) -> list:
    browser.get(stack.url("gateway") + "/")
    box = browser.find_element(By.ID, "query")
    box.send_keys(query)
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .card")
                                         or "failed" in d.find_element(By.ID, "status").text)
    return browser.find_elements(By.CSS_SELECTOR, "#results .card")


def test_search_shows_cards_and_answer(browser, stack) -> None:
    cards = _search(browser, stack, "samsung phone with 8gb ram under 20000")
    status = browser.find_element(By.ID, "status").text
    assert cards, status
    first = cards[0]
    assert first.find_element(By.CSS_SELECTOR, ".brand").text.lower() == "samsung"
    assert re.search(r"₹\s?[\d,]+", first.find_element(By.CSS_SELECTOR, ".price").text)
    assert "RAM" in first.find_element(By.CSS_SELECTOR, ".specs").text
    answer = browser.find_element(By.ID, "answer")
    assert answer.is_displayed()
    assert browser.find_element(By.ID, "answer-summary").text
    assert re.search(r"\d+ results? in \d+ ms", status)


def test_card_click_is_sent_to_the_event_endpoint(browser, stack) -> None:
    cards = _search(browser, stack, "realme phone under 15000")
    assert cards
    item_id = cards[0].get_attribute("data-item-id")
    cards[0].find_element(By.CSS_SELECTOR, "h2").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#results .card").get_attribute("data-click-status")
        not in (None, "pending"))
    last = browser.execute_script("return window.pickwise.lastClick")
    assert last["item_id"] == item_id
    assert last["position"] == 0
    assert 200 <= last["status"] < 300, last
    user_id = browser.execute_script("return localStorage.getItem('pickwise.user_id')")
    assert user_id and user_id.startswith("web-")


def test_similar_lists_other_items(browser, stack) -> None:
    cards = _search(browser, stack, "oneplus 5g")
    assert cards
    cards[0].find_element(By.CSS_SELECTOR, ".similar-button").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#similar-track li")
        and "loading" not in d.find_element(By.ID, "similar-track").text)
    entries = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#similar-track li")]
    assert entries and not any("unavailable" in e for e in entries), entries
    assert cards[0].get_attribute("data-click-status") is None  # "Similar" is not a product click
