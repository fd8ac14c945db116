/** A small two-language table: Russian first, English second (the portal's language picks). */
import { computed, ref } from 'vue'

export type Lang = 'ru' | 'en'

const ru = {
  appTitle: 'Касса',
  navCashier: 'Касса', navJournal: 'Журнал', navFleet: 'Кассы', navSales: 'Продажи', navSettings: 'Настройки', navAutomation: 'Автоматизация', navPairing: 'Подключение', navInstall: 'Установка',
  loading: 'Загрузка…', notInFrame: 'Откройте приложение из Битрикс24: вне портала оно не работает.',
  notAdminInstall: 'Приложение ещё не установлено. Установку выполняет администратор портала: попросите его открыть приложение.',
  adminOnly: 'Эта страница доступна только администратору портала.',
  install: 'Установить', installing: 'Установка…', installDone: 'Готово: хранилища и пункты меню созданы.', installAgain: 'Проверить ещё раз',
  created: 'создано', present: 'уже есть',
  kassa: 'Касса', online: 'на связи', offline: 'нет связи', lastSeen: 'последний раз', noKassa: 'Нет ни одной кассы. Подключите кассу на странице «Подключение».',
  position: 'Позиция', name: 'Наименование', price: 'Цена', quantity: 'Кол-во', unit: 'Ед.', vat: 'НДС', paymentObject: 'Предмет расчёта', paymentMethod: 'Способ расчёта', discount: 'Скидка',
  addPosition: 'Добавить позицию', remove: 'Убрать', searchCatalog: 'Поиск в каталоге', total: 'Итого', cash: 'Наличные', card: 'Карта', change: 'Сдача',
  buyer: 'E-mail или телефон покупателя', electronically: 'Только электронный чек', sell: 'Продажа', sellReturn: 'Возврат',
  send: 'Пробить чек', sending: 'Отправка…', retry: 'Повторить', newReceipt: 'Новый чек',
  cashIn: 'Внесение', cashOut: 'Выплата', reportX: 'X-отчёт', openShift: 'Открыть смену', closeShift: 'Закрыть смену', printLastReceiptCopy: 'Копия последнего чека', sum: 'Сумма',
  state_new: 'отправлено', state_accepted: 'принято кассой', state_done: 'готово', state_failed: 'ошибка', state_cancelled: 'отменено', state_sending: 'отправка',
  fiscalData: 'Фискальные данные', fnsCheck: 'Проверить чек в ФНС', fd: 'ФД', fp: 'ФП', fn: 'ФН', shift: 'Смена', receiptNo: 'Чек №',
  journal: 'Журнал чеков', filters: 'Фильтры', from: 'С', to: 'По', cashier: 'Кассир (ID)', type: 'Тип', source: 'Источник', state: 'Статус', any: 'все', apply: 'Применить',
  exportCsv: 'Выгрузить CSV', page: 'Стр.', of: 'из', details: 'Подробно', task: 'Задание', result: 'Результат', error: 'Ошибка', makeReturn: 'Оформить возврат', close: 'Закрыть',
  fleet: 'Кассы', problems: 'Проблемы', noProblems: 'в порядке', model: 'Модель', serial: 'Зав. №', regNumber: 'РН ККТ', fnNumber: 'Номер ФН', fnExpiry: 'ФН до', daysLeft: 'дн. осталось',
  ofdUnsent: 'Не отправлено в ОФД', ofdOldest: 'старейший', queue: 'Очередь', paper: 'Бумага', versions: 'Версии', lastError: 'Последняя ошибка',
  'problem_offline': 'Нет связи', 'problem_fn-expiry': 'ФН истекает через {days} дн.', 'problem_fn-expired': 'ФН истёк', 'problem_ofd-backlog': 'ОФД: {count} док. не отправлены {days} дн. (блокировка через {left} дн.)',
  'problem_no-paper': 'Нет бумаги', 'problem_queue-blocked': 'Очередь стоит: {reason}', 'problem_shift-old': 'Смена открыта {hours} ч', 'problem_last-error': 'Ошибка: {reason}',
  sales: 'Продажи', period: 'Период', byDay: 'По дням', byKassa: 'По кассам', byPayment: 'По видам оплаты', receipts: 'Чеков', load: 'Показать',
  pay_cash: 'Наличные', pay_electronically: 'Безналичные', pay_prepaid: 'Аванс', pay_credit: 'Кредит', pay_other: 'Другое',
  pairing: 'Подключение кассы', kassaId: 'ID кассы', clientId: 'client_id приложения', clientSecret: 'client_secret приложения',
  pairingHint: 'client_id и client_secret есть в карточке локального приложения (Разработчикам → Интеграции). Ключ не сохраняется в Битрикс24.',
  makeCode: 'Получить код', code: 'Код подключения', command: 'Выполните на кассе', copy: 'Копировать', copied: 'Скопировано', waitingOnline: 'Ждём первой связи от кассы…', kassaOnline: 'Касса на связи',
  spareToken: 'Резервный токен включён', settings: 'Настройки кассы', operatorName: 'Кассир (ФИО)', operatorVatin: 'ИНН кассира', taxation: 'Система налогообложения', defaultVat: 'НДС по умолчанию',
  paymentsPlace: 'Место расчётов', allowedUsers: 'Кто может пробивать чеки (ID пользователей)', allowedDepartments: 'Или сотрудники отделов (ID, с подотделами)', save: 'Сохранить', saved: 'Сохранено',
  notifyUsers: 'Кому сообщать о проблемах кассы (ID пользователей)', notifyDefault: 'Пусто — сообщения получает администратор, подключивший кассу',
  anyoneMay: 'Пусто здесь и в отделах — чеки может пробивать любой пользователь приложения', pickUser: '+ сотрудник', pickDepartment: '+ отдел',
  notListed: 'нет в списке портала: {ids}', noScope: 'У приложения нет права «{scope}»: введите ID', listFailed: 'Список не загрузился ({error}): введите ID',
  cfg_none: 'Настроек ещё нет', cfg_pending: 'Ждём, пока касса примет версию {version}', cfg_applied: 'Касса работает с версией {version}', cfg_refused: 'Касса отклонила версию {version}: {error}',
  dealReceipt: 'Чек по сделке'
}

type Messages = Record<keyof typeof ru, string>

const en: Messages = {
  appTitle: 'Kassa',
  navCashier: 'Cashier', navJournal: 'Journal', navFleet: 'Fleet', navSales: 'Sales', navSettings: 'Settings', navAutomation: 'Automation', navPairing: 'Pairing', navInstall: 'Install',
  loading: 'Loading…', notInFrame: 'Open the app from Bitrix24: it does not work outside the portal.',
  notAdminInstall: 'The app is not installed yet. A portal administrator installs it: ask one to open the app.',
  adminOnly: 'Only a portal administrator can use this page.',
  install: 'Install', installing: 'Installing…', installDone: 'Done: storages and menu entries are in place.', installAgain: 'Check again',
  created: 'created', present: 'already there',
  kassa: 'Kassa', online: 'online', offline: 'offline', lastSeen: 'last seen', noKassa: 'No kassa yet. Pair one on the Pairing page.',
  position: 'Position', name: 'Name', price: 'Price', quantity: 'Qty', unit: 'Unit', vat: 'VAT', paymentObject: 'Payment object', paymentMethod: 'Payment method', discount: 'Discount',
  addPosition: 'Add position', remove: 'Remove', searchCatalog: 'Search the catalog', total: 'Total', cash: 'Cash', card: 'Card', change: 'Change',
  buyer: 'Buyer e-mail or phone', electronically: 'Electronic receipt only', sell: 'Sale', sellReturn: 'Return',
  send: 'Print receipt', sending: 'Sending…', retry: 'Retry', newReceipt: 'New receipt',
  cashIn: 'Cash in', cashOut: 'Cash out', reportX: 'X report', openShift: 'Open shift', closeShift: 'Close shift', printLastReceiptCopy: 'Copy of last receipt', sum: 'Sum',
  state_new: 'sent', state_accepted: 'accepted by the kassa', state_done: 'done', state_failed: 'failed', state_cancelled: 'cancelled', state_sending: 'sending',
  fiscalData: 'Fiscal data', fnsCheck: 'Check the receipt at the FNS', fd: 'FD', fp: 'FP', fn: 'FN', shift: 'Shift', receiptNo: 'Receipt #',
  journal: 'Receipt journal', filters: 'Filters', from: 'From', to: 'To', cashier: 'Cashier (id)', type: 'Type', source: 'Source', state: 'State', any: 'any', apply: 'Apply',
  exportCsv: 'Export CSV', page: 'Page', of: 'of', details: 'Details', task: 'Task', result: 'Result', error: 'Error', makeReturn: 'Make a return', close: 'Close',
  fleet: 'Fleet', problems: 'Problems', noProblems: 'all good', model: 'Model', serial: 'Serial', regNumber: 'Reg. number', fnNumber: 'FN number', fnExpiry: 'FN until', daysLeft: 'days left',
  ofdUnsent: 'Not sent to the OFD', ofdOldest: 'oldest', queue: 'Queue', paper: 'Paper', versions: 'Versions', lastError: 'Last error',
  'problem_offline': 'Offline', 'problem_fn-expiry': 'FN expires in {days} days', 'problem_fn-expired': 'FN expired', 'problem_ofd-backlog': 'OFD: {count} documents unsent for {days} days (blocks in {left})',
  'problem_no-paper': 'No paper', 'problem_queue-blocked': 'Queue blocked: {reason}', 'problem_shift-old': 'Shift open {hours} h', 'problem_last-error': 'Error: {reason}',
  sales: 'Sales', period: 'Period', byDay: 'Per day', byKassa: 'Per kassa', byPayment: 'Per payment type', receipts: 'Receipts', load: 'Show',
  pay_cash: 'Cash', pay_electronically: 'Card', pay_prepaid: 'Prepaid', pay_credit: 'Credit', pay_other: 'Other',
  pairing: 'Pair a kassa', kassaId: 'Kassa id', clientId: 'App client_id', clientSecret: 'App client_secret',
  pairingHint: 'client_id and client_secret are on the local app\'s card (Developer resources → Integrations). The secret is never stored in Bitrix24.',
  makeCode: 'Make the code', code: 'Pairing code', command: 'Run on the kassa', copy: 'Copy', copied: 'Copied', waitingOnline: 'Waiting for the kassa\'s first heartbeat…', kassaOnline: 'The kassa is online',
  spareToken: 'Spare token included', settings: 'Kassa settings', operatorName: 'Cashier (full name)', operatorVatin: 'Cashier INN', taxation: 'Taxation system', defaultVat: 'Default VAT',
  paymentsPlace: 'Place of settlement', allowedUsers: 'Who may print receipts (user ids)', allowedDepartments: 'Or the staff of departments (ids, sub-departments too)', save: 'Save', saved: 'Saved',
  notifyUsers: 'Who is told of the kassa\'s problems (user ids)', notifyDefault: 'Empty: the administrator who paired the kassa is told',
  anyoneMay: 'Empty here and in departments: any user of the app may print receipts', pickUser: '+ user', pickDepartment: '+ department',
  notListed: 'not in the portal\'s list: {ids}', noScope: 'The app has no «{scope}» scope: type the ids', listFailed: 'The list did not load ({error}): type the ids',
  cfg_none: 'No settings yet', cfg_pending: 'Waiting for the kassa to take version {version}', cfg_applied: 'The kassa runs version {version}', cfg_refused: 'The kassa refused version {version}: {error}',
  dealReceipt: 'Receipt for the deal'
}

export type MessageKey = keyof typeof ru
export const MESSAGES: Record<Lang, Messages> = { ru, en }

export const lang = ref<Lang>('ru')
export const setLang = (code: string): void => { lang.value = code === 'ru' || code === 'ua' || code === 'by' || code === 'kz' ? 'ru' : 'en' }

/** The message, with {name} placeholders filled. Unknown keys show as themselves. */
export function translate(language: Lang, key: string, vars: Record<string, string | number> = {}): string {
  const table = MESSAGES[language] as Record<string, string>
  const text = table[key] ?? (MESSAGES.ru as Record<string, string>)[key] ?? key
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ''))
}

export const t = (key: string, vars?: Record<string, string | number>): string => translate(lang.value, key, vars)
export const currentLang = computed(() => lang.value)
