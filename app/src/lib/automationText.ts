/** The words of the CRM automation page (its own chunk: not part of the first load). */
import { lang, type Lang } from './i18n'

const ru = {
  automation: 'Автоматизация CRM', automationHint: 'Сделка, вошедшая в стадию, или оплаченный платёж пробивает чек сам. Правила читает касса — хост автоматизации (automation.enabled=true).',
  rules: 'Правила', noRules: 'Правил пока нет.', addRule: 'Добавить правило', editRule: 'Изменить', deleteRule: 'Удалить', done: 'Готово', cancelEdit: 'Отмена',
  saveVersion: 'Сохранить правила', unsaved: 'Есть несохранённые изменения', reload: 'Обновить',
  ruleId: 'ID правила', trigger: 'Когда', trigger_deal_stage: 'Сделка перешла в стадию', trigger_payment_paid: 'Оплата сделки отмечена оплаченной',
  pipeline: 'Воронка', anyPipeline: 'любая', stage: 'Стадия', returnStage: 'Стадия возврата', noReturn: 'нет', kassa: 'Касса',
  receiptType: 'Тип чека', paymentType: 'Вид оплаты', taxation: 'Система налогообложения', kassaDefault: 'как на кассе', vatDefault: 'НДС, если у товара нет ставки',
  delivery: 'Чек', electronicTo: 'электронный — клиенту сделки (e-mail или телефон)', paper: 'бумажный', paymentsAddress: 'Сайт магазина (для электронных чеков)',
  rt_full_payment: 'Полный расчёт', rt_full_prepayment: 'Предоплата 100 %', rt_prepayment: 'Предоплата', rt_advance: 'Аванс', rt_credit: 'Передача в кредит',
  pt_cash: 'Наличными', pt_electronically: 'Безналичными', pt_prepaid: 'Зачёт аванса', pt_credit: 'Постоплата (кредит)', pt_other: 'Иная форма',
  tx_osn: 'ОСН', tx_usnIncome: 'УСН доходы', tx_usnIncomeOutcome: 'УСН доходы − расходы', tx_esn: 'ЕСХН', tx_patent: 'Патент',
  vat_none: 'Без НДС', vat_vat0: '0 %', vat_vat5: '5 %', vat_vat7: '7 %', vat_vat10: '10 %', vat_vat20: '20 %', vat_vat22: '22 %',
  returnOn: 'возврат в стадии «{stage}»', printsOn: 'печатает на «{kassa}»',
  st_none: 'Правила ещё не сохранены', st_pending: 'Ждём, пока хост автоматизации примет версию {version}…', st_applied: 'Хост автоматизации работает с версией {version}',
  st_refused: 'Хост автоматизации отклонил версию {version}. Ничего не изменилось: {kept}', keptVersion: 'в силе остаётся версия {version}', keptNone: 'действующих правил нет',
  inForce: 'Действуют правила версии {version}:', ruleErrors: 'Исправьте и сохраните снова', pipelinesFailed: 'Не удалось загрузить воронки ({error}): введите ID стадий вручную (WON, C1:WON).',
  unreadable: 'В хранилище лежит не список правил; сохранение заменит его.'
}

type Messages = Record<keyof typeof ru, string>

const en: Messages = {
  automation: 'CRM automation', automationHint: 'A deal entering a stage, or a payment marked paid, prints its receipt by itself. The kassa that hosts the automation (automation.enabled=true) reads the rules.',
  rules: 'Rules', noRules: 'No rules yet.', addRule: 'Add a rule', editRule: 'Edit', deleteRule: 'Delete', done: 'Done', cancelEdit: 'Cancel',
  saveVersion: 'Save the rules', unsaved: 'Unsaved changes', reload: 'Reload',
  ruleId: 'Rule id', trigger: 'When', trigger_deal_stage: 'A deal enters a stage', trigger_payment_paid: 'A payment of a deal is marked paid',
  pipeline: 'Pipeline', anyPipeline: 'any', stage: 'Stage', returnStage: 'Return stage', noReturn: 'none', kassa: 'Kassa',
  receiptType: 'Receipt type', paymentType: 'Payment type', taxation: 'Taxation system', kassaDefault: "the kassa's default", vatDefault: 'VAT when the product has none',
  delivery: 'Receipt', electronicTo: "electronic, to the deal's client (e-mail or phone)", paper: 'paper', paymentsAddress: "The shop's site (for electronic receipts)",
  rt_full_payment: 'Full payment', rt_full_prepayment: 'Full prepayment', rt_prepayment: 'Prepayment', rt_advance: 'Advance', rt_credit: 'Credit',
  pt_cash: 'Cash', pt_electronically: 'Card / transfer', pt_prepaid: 'Prepaid (advance offset)', pt_credit: 'Credit', pt_other: 'Other',
  tx_osn: 'OSN', tx_usnIncome: 'USN income', tx_usnIncomeOutcome: 'USN income − expenses', tx_esn: 'ESKhN', tx_patent: 'Patent',
  vat_none: 'No VAT', vat_vat0: '0 %', vat_vat5: '5 %', vat_vat7: '7 %', vat_vat10: '10 %', vat_vat20: '20 %', vat_vat22: '22 %',
  returnOn: 'return at «{stage}»', printsOn: 'prints on «{kassa}»',
  st_none: 'No rules saved yet', st_pending: 'Waiting for the automation host to take version {version}…', st_applied: 'The automation host runs version {version}',
  st_refused: 'The automation host refused version {version}. Nothing changed: {kept}', keptVersion: 'version {version} stays in force', keptNone: 'no rules are in force',
  inForce: 'Rules of version {version} in force:', ruleErrors: 'Fix and save again', pipelinesFailed: 'The pipelines did not load ({error}): type the stage ids (WON, C1:WON).',
  unreadable: 'The storage holds something other than a rule list; saving replaces it.'
}

const TABLE: Record<Lang, Messages> = { ru, en }

export function ta(key: string, vars: Record<string, string | number> = {}): string {
  const text = (TABLE[lang.value] as Record<string, string>)[key] ?? (ru as Record<string, string>)[key] ?? key
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ''))
}
