/** Hash routes (a static app's URL on the CDN has no server to rewrite paths); one chunk per page. */
import { createRouter, createWebHashHistory } from 'vue-router'

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/', redirect: '/cashier' },
    { path: '/install', name: 'install', component: () => import('./pages/InstallPage.vue') },
    { path: '/pairing', name: 'pairing', component: () => import('./pages/PairingPage.vue') },
    { path: '/cashier', name: 'cashier', component: () => import('./pages/CashierPage.vue') },
    { path: '/journal', name: 'journal', component: () => import('./pages/JournalPage.vue') },
    { path: '/fleet', name: 'fleet', component: () => import('./pages/FleetPage.vue') },
    { path: '/sales', name: 'sales', component: () => import('./pages/SalesPage.vue') },
    { path: '/settings', name: 'settings', component: () => import('./pages/SettingsPage.vue') },
    { path: '/automation', name: 'automation', component: () => import('./pages/AutomationPage.vue') },
    { path: '/:rest(.*)*', redirect: '/cashier' }
  ]
})
