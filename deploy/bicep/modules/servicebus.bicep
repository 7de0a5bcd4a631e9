// The queue Graph notifications and commands arrive on, and who may use it.
//
// Queue settings follow the worker's settlement rules (design.md, "Service Bus (facts)"):
// peek-lock with renewal, dead-letter after 10 deliveries, duplicate detection because Event
// Grid keeps one message id across its redeliveries, and no sessions because Event Grid cannot
// deliver to session-enabled queues.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Service Bus namespace name (globally unique).')
param namespaceName string

@description('Queue name.')
param queueName string

@description('Peek-lock duration, PT1M to PT5M.')
param lockDuration string

@description('Principal id of the worker identity: receives, settles and (backfill --enqueue) sends.')
param workerPrincipalId string

@description('Principal id of the scaler identity: reads the queue length for KEDA (needs Manage, so Data Owner, on this queue only).')
param scalerPrincipalId string

// Built-in role definition ids (stable across tenants).
var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var serviceBusDataOwner = '090c5cfd-751d-490a-894a-3ce6f1109419'

resource namespace 'Microsoft.ServiceBus/namespaces@2021-11-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    minimumTlsVersion: '1.2'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2021-11-01' = {
  parent: namespace
  name: queueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    requiresSession: false
    enablePartitioning: false
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
  }
}

var grants = [
  { principalId: workerPrincipalId, role: serviceBusDataReceiver }
  { principalId: workerPrincipalId, role: serviceBusDataSender }
  { principalId: scalerPrincipalId, role: serviceBusDataOwner }
]

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for g in grants: {
    name: guid(queue.id, g.principalId, g.role)
    scope: queue
    properties: {
      principalId: g.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', g.role)
    }
  }
]

@description('Resource id of the queue (Event Grid destination).')
output queueId string = queue.id

@description('Namespace host name, <ns>.servicebus.windows.net.')
output namespaceHost string = '${namespace.name}.servicebus.windows.net'
