"""The ``billing_invoice`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.triage_rules.fragments import (
    CHARGE,
    CHARGED_AFTER_CANCEL,
    CHARGED_NOT_PRICE,
    TWICE,
    TWICE_MORE,
)
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule, raw_rule, rule, rx

__all__ = ["RULES", "TEXT"]

RULES: tuple[Rule, ...] = (
    # Receipts, however they are spelled.
    rule(2.5, r"rec(?:ie|ei|i)pts?|receipts? for (?:my )?tax\w*"),
    rule(
        3.5,
        rf"(?:{CHARGE}) (?:me )?(?:\w+ ){{0,3}}?(?:{TWICE}|{TWICE_MORE})|charged again",
        rf"(?:{TWICE}|{TWICE_MORE}|two) (?:\w+ )?(?:{CHARGE}|payments)",
        r"double[\s-]?charged?|duplicate (?:charge|payment)",
    ),
    rule(
        3.5,
        r"overcharged|charged (?:me )?(?:the )?wrong(?:ly)?|wrong(?:ly)? charged",
        r"wrong amount|falscher betrag|montant incorrect|valor errado|importe incorrecto",
        rf"(?:{CHARGE}) (?:\w+ ){{0,4}}?(?:instead of|statt|anstatt|au lieu de|en vez de"
        r"|em vez de|invece di)",
        CHARGED_AFTER_CANCEL,
        CHARGED_NOT_PRICE,
        r"(?:never|didnt|did not) (?:ordered|order|bought|signed up|subscribed|upgraded"
        r"|authori[sz]ed)",
    ),
    rule(
        3.0,
        r"invoices?|invoce|invioce|inovice|receipts?|reciepts?|receits?|facturas?",
        r"faturas?|nota fiscal|rechnung\w*|factures?|fattur\w*|recibos?|quittung|beleg",
        r"recu|ricevut\w*|comprovante",
    ),
    rule(
        2.5,
        r"refunds?|refunded|chargeback|reembols\w*|rembours\w*|ruckerstatt\w*|erstatt\w*",
        r"rimbors\w*|devolu\w*|money back",
        r"(?:give|pay|send) (?:me )?back (?:the |my )?(?:\w+ )?(?:money|difference|amount|fee"
        r"|[€$£]?\d+)",
    ),
    rule(2.5, r"(?:card|account|bank) (?:was |got |has been )?(?:debited|charged)"),
    rule(
        2.5,
        r"(?:cancel|pause|paus|reactivat|resum|unpaus|reinstat)\w* (?:my |the |our )?"
        r"(?:subscription|membership|plan|premium|pro|renewal"
        r"|suscripcion|assinatura|abo|abonnement|abbonamento)",
        r"paid (?:for|but|and)|card (?:was )?(?:declined|expired)",
        r"payment (?:failed|declined|went through|issue|problem)",
        r"(?:payment|pagamento|pago|zahlung|paiement|card|cartao|tarjeta|karte|carte)"
        r" (?:\w+ ){0,2}(?:failed|declined|recusad[oa]|rechazad[oa]|abgelehnt|refuse\w*"
        r"|rifiutat[oa])",
        r"(?:money|amount|valor|importe|betrag|montant|dinheiro|dinero) (?:\w+ ){0,2}"
        r"(?:saiu|left|taken|salio|abgebucht|debite)",
        r"(?:still|todavia|ainda|immer noch|toujours)(?: \w+){0,4} (?:free|gratis|gratuit\w*"
        r"|kostenlos)|free (?:account|plan|version|tier)|cuenta gratis|conta gratis",
    ),
    rule(2.0, r"billing|billed|bill|payouts?", CHARGE),
    rule(
        2.0,
        r"discount|promo code|coupon|voucher|student (?:price|plan|rate)|desconto|descuento",
        r"rabatt|remise|sconto|gift card|family plan",
    ),
    rule(
        2.5,
        r"price (?:\w+ )?(?:go|went|going|gone) up|price (?:increase|hike|change)",
        r"(?:increased|raised) (?:the |my |our )?price|more expensive",
    ),
    rule(
        2.0,
        r"prorat\w*|pro-rata|bank (?:transfer|account|statement)|(?:update|updated) (?:\w+ )?"
        r"card|card (?:update|details)|vat|iva|mwst|tva|cpf|cnpj|nif|tax (?:id|number)",
        r"company name|bookkeeping|reimburse\w*|expense report|monatsbeitrag|mitgliedsbeitrag",
    ),
    rule(
        1.5,
        r"subscriptions?|subscribed|suscripcion|assinatura|abonnement|abbonamento|abo",
        r"premium|plans?",
    ),
    rule(
        1.5,
        r"renew(?:ed|al|s)?|trial|upgrade[ds]?|downgrade[ds]?|lapses?|annual|yearly|monthly",
        r"renova\w*|verlanger\w*|renouvel\w*|rinnov\w*",
    ),
    rule(
        1.0,
        r"payments?|paid|pay|pague|pagu\w*|pago|pagamento|zahlung|bezahlt|paiement|pagat\w*",
        r"credit card|debit card|card|apple pay|google pay|paypal|stripe|price|pricing|fees?",
        r"frais|gebuhr\w*|tarifa|taxa|commissione",
        r"money|amount|betrag|montant|importe|credit|pro|membership",
    ),
    raw_rule(1.0, r"[€$£]\s?\d|\d(?:[.,]\d+)?\s?(?:€|\beur\b|\beuros?\b|\busd\b|\bdollars?\b)"),
)

TEXT = CategoryText(
    "Billing or invoice issue",
    "Invoice delivery failure, duplicate charge, or billing access out of step with payment",
    "Check the invoice, its delivery status and billing access; propose a resend or access "
    "restore for admin approval",
    (
        Hint(
            rx(
                rf"charged (?:me )?(?:{TWICE}|again|wrong\w*)|overcharged|refund\w*",
                r"double[\s-]?charged?|duplicate (?:charge|payment)",
            ),
            "Duplicate or incorrect charge, e.g. a retried payment or a renewal after cancel",
            "Compare charges with the subscription history; refunds are a staff decision, "
            "never automated",
        ),
        Hint(
            rx(r"invoices?|invoce|invioce|inovice|receipts?|reciepts?|receits?"),
            "Invoice email not delivered (bounced, filtered as spam, or wrong billing email)",
            "Check the invoice and its delivery status; propose a resend for admin approval",
        ),
        Hint(
            rx(r"paid|premium|access"),
            "Billing access out of step with a successful payment",
            "Check payment and entitlement state; propose restoring billing access for admin "
            "approval",
        ),
    ),
)
